"""`mmif detect-base`: the shared YOLO detector of every seed (protocols frozen and finetune).

Trains `detect.base.model` from scratch (or from `detect.base_weights`, a local .pt file) with
the `detect.base` schedule on the train split's infrared and visible images as separate samples with
the same labels, validating on the val split's. Writes OUT/seed_S/model.pt, curves.csv and
metrics.json per seed and OUT/base.json. Under `detect.protocol: retrain` nothing is trained
(base.json says so). On the CPU the seeds train side by side in worker processes (`detect.jobs`).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from pipelines.detect import load_section
from pipelines.tasks import add_base_arguments, run_base

HELP = "train the shared YOLO detector of each seed (frozen / finetune protocols)"
DESCRIPTION = __doc__


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_base_arguments(p, "detect")


def run(args: argparse.Namespace) -> int:
    from detection.config import ultralytics_device

    params, sec = load_section(args)

    def train_one(seed: int, out: Path) -> None:
        from detection.train import train_base

        cfg = sec.schedule("base")
        if sec.base_weights:
            import dataclasses

            cfg = dataclasses.replace(cfg, model=sec.base_weights)
        train_base(args.data, out, cfg, seed)

    on_cuda = ultralytics_device(sec.device) != "cpu"
    return run_base("detect", args, params, sec.protocol, sec.jobs, on_cuda, train_one)
