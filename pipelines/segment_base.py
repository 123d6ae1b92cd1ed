"""`mmif segment-base`: the shared segmenter of every seed (protocols frozen and finetune).

Trains `segment.arch` / `segment.encoder` (from `segment.encoder_weights` when given) with the
`segment.base` schedule on the train split's infrared and visible images as separate samples with
the same masks, keeping the best epoch on the val split's (or the last: `select_on_val`). Writes
OUT/seed_S/model.pt, curves.csv and metrics.json per seed and OUT/base.json; with
`segment.base.members: K` above 1, a seed's model is K networks trained one after another
(model.pt, model_1.pt, ...; curves.csv, curves_1.csv, ...) whose probabilities are averaged. With
`segment.base.calibration: class_shares` (off in the default params.yaml) one score offset per
class is then fit on the val split's infrared and visible images, so that each class is predicted
on as many val pixels as it is labelled there; metrics.json keeps the offsets and every frozen
scoring applies them. Under `segment.protocol: retrain` nothing is trained (base.json says so). On
the CPU the seeds train side by side in worker processes (`segment.jobs`).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from pipelines.segment import load_section
from pipelines.tasks import add_base_arguments, run_base

HELP = "train the shared segmenter of each seed (frozen / finetune protocols)"
DESCRIPTION = __doc__


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_base_arguments(p, "segment")


def run(args: argparse.Namespace) -> int:
    from mmif.runtime import resolve_device

    params, sec = load_section(args)

    def train_one(seed: int, out: Path) -> None:
        from segmentation.train import train_base

        train_base(args.data, out, sec.schedule("base"), seed)

    on_cuda = resolve_device(sec.device, "segment.device").type == "cuda"
    return run_base("segment", args, params, sec.protocol, sec.jobs, on_cuda, train_one)
