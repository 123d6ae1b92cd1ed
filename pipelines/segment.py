"""`mmif segment`: train and evaluate a segmentation-models-pytorch model on one method's fused
images, one seed.

Writes metrics.json (mIoU, per-class IoU, pixel accuracy), confusion.npz (per-image confusion
counts, for the report's bootstrap) and curves.csv. Datasets without masks are skipped with a
note in metrics.json.
"""

from __future__ import annotations

import argparse
import logging

from mmif.config import section
from pipelines.common import load_params
from pipelines.tasks import add_task_arguments, skip_reason, write_skipped

log = logging.getLogger(__name__)

HELP = "train + evaluate semantic segmentation on fused images"
DESCRIPTION = __doc__
OUTPUTS = {"metrics.json": "json", "confusion.npz": "npz", "curves.csv": "csv"}


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_task_arguments(p)


def run(args: argparse.Namespace) -> int:
    from segmentation.config import SegmentConfig

    cfg = section(load_params(args), "segment", SegmentConfig)
    if args.device:
        cfg.device = args.device
    reason = skip_reason(args.data, args.fused, "seg")
    if reason:
        write_skipped(args.out, OUTPUTS, reason, args.method, args.seed)
        return 0
    from segmentation import NoTaskLabels
    from segmentation.train import train_and_evaluate

    try:
        metrics = train_and_evaluate(args.fused, args.data, args.out, cfg, seed=args.seed)
    except NoTaskLabels as exc:
        write_skipped(args.out, OUTPUTS, str(exc), args.method, args.seed)
        return 0
    log.info("%s seed %d: mIoU=%.4f", args.method, args.seed, metrics["mIoU"])
    return 0
