"""`mmif detect`: train and evaluate a YOLO detector on one method's fused images, per seed.

For every seed (`seeds` of params.yaml, or --seeds), writes to OUT/seed_S/: metrics.json
(mAP50, mAP50-95, precision, recall, per-class AP and a torchmetrics cross-check),
predictions.json (per test image, for the report's bootstrap) and curves.csv.
Datasets without detection labels (e.g. medical pairs) are skipped with a note in metrics.json.
On the CPU the seeds train side by side in worker processes (`detect.jobs`); --summary and
--curves add the mean and std over seeds (DVC metrics) and the mean training curves (DVC plots).
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from mmif.config import section
from pipelines.common import load_params
from pipelines.tasks import add_task_arguments, run_task

log = logging.getLogger(__name__)

HELP = "train + evaluate YOLO detection on fused images"
DESCRIPTION = __doc__
OUTPUTS = {"metrics.json": "json", "predictions.json": "json", "curves.csv": "csv"}


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_task_arguments(p)


def run(args: argparse.Namespace) -> int:
    from detection.config import DetectConfig, ultralytics_device

    params = load_params(args)
    cfg = section(params, "detect", DetectConfig)
    if args.device:
        cfg.device = args.device
    cfg.validate()

    def train_one(seed: int, out: Path) -> None:
        from detection.train import train_and_evaluate

        metrics = train_and_evaluate(args.fused, args.data, out, cfg, seed=seed)
        log.info(
            "%s seed %d: mAP50=%.4f mAP50-95=%.4f",
            args.method,
            seed,
            metrics["mAP50"],
            metrics["mAP50_95"],
        )

    on_cuda = ultralytics_device(cfg.device) != "cpu"
    return run_task("detect", args, params, cfg.jobs, on_cuda, OUTPUTS, train_one)
