"""`mmif segment`: train and evaluate a segmentation-models-pytorch model on one method's fused
images, per seed.

For every seed (`seeds` of params.yaml, or --seeds), writes to OUT/seed_S/: metrics.json
(mIoU, per-class IoU, pixel accuracy), confusion.npz (per-image confusion counts, for the
report's bootstrap) and curves.csv. Datasets without masks are skipped with a note in
metrics.json. On the CPU the seeds train side by side in worker processes
(`segment.jobs`); --summary and --curves add the mean and std over seeds (DVC metrics) and the
mean training curves (DVC plots).
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from mmif.config import section
from pipelines.common import load_params
from pipelines.tasks import add_task_arguments, run_task, write_skipped

log = logging.getLogger(__name__)

HELP = "train + evaluate semantic segmentation on fused images"
DESCRIPTION = __doc__
OUTPUTS = {"metrics.json": "json", "confusion.npz": "npz", "curves.csv": "csv"}


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_task_arguments(p)


def run(args: argparse.Namespace) -> int:
    from segmentation.config import SegmentConfig, resolve_device

    params = load_params(args)
    cfg = section(params, "segment", SegmentConfig)
    if args.device:
        cfg.device = args.device
    cfg.validate()

    def train_one(seed: int, out: Path) -> None:
        from segmentation import NoTaskLabels
        from segmentation.train import train_and_evaluate

        try:
            metrics = train_and_evaluate(args.fused, args.data, out, cfg, seed=seed)
        except NoTaskLabels as exc:
            write_skipped(out, OUTPUTS, str(exc), args.method, seed)
            return
        log.info("%s seed %d: mIoU=%.4f", args.method, seed, metrics["mIoU"])

    on_cuda = resolve_device(cfg.device).type == "cuda"
    return run_task("segment", args, params, cfg.jobs, on_cuda, OUTPUTS, train_one)
