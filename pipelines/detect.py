"""`mmif detect`: train and evaluate a YOLO detector on one method's fused images, one seed.

Writes metrics.json (mAP50, mAP50-95, precision, recall, per-class AP and a torchmetrics
cross-check), predictions.json (per test image, for the report's bootstrap) and curves.csv.
Datasets without detection labels (e.g. medical pairs) are skipped with a note in metrics.json.
"""

from __future__ import annotations

import argparse
import logging

from mmif.config import section
from pipelines.common import load_params
from pipelines.tasks import add_task_arguments, skip_reason, write_skipped

log = logging.getLogger(__name__)

HELP = "train + evaluate YOLO detection on fused images"
DESCRIPTION = __doc__
OUTPUTS = {"metrics.json": "json", "predictions.json": "json", "curves.csv": "csv"}


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_task_arguments(p)


def run(args: argparse.Namespace) -> int:
    from detection.config import DetectConfig

    cfg = section(load_params(args), "detect", DetectConfig)
    if args.device:
        cfg.device = args.device
    reason = skip_reason(args.data, args.fused, "det")
    if reason:
        write_skipped(args.out, OUTPUTS, reason, args.method, args.seed)
        return 0
    from detection.train import train_and_evaluate

    metrics = train_and_evaluate(args.fused, args.data, args.out, cfg, seed=args.seed)
    log.info(
        "%s seed %d: mAP50=%.4f mAP50-95=%.4f",
        args.method,
        args.seed,
        metrics["mAP50"],
        metrics["mAP50_95"],
    )
    return 0
