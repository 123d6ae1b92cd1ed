"""`mmif segment`: score one method's fused images with semantic segmentation
(segmentation-models-pytorch), per seed, under the protocol of params.yaml (`segment.protocol`,
see mmif.protocol):

- frozen: the shared segmenter of each seed (`mmif segment-base`, models/segment_base) scores
  the method's fused test images; nothing is trained, a method with test images only is scored;
- finetune: the shared segmenter is fine-tuned on the method's fused train split, then scored;
- retrain: a segmenter is trained from scratch on the method's fused train split.

For every seed (`seeds` of params.yaml, or --seeds), writes to OUT/seed_S/: metrics.json
(protocol, mIoU, per-class IoU, pixel accuracy), confusion.npz (per-image confusion counts, for
the report's statistics) and curves.csv. Datasets without masks are skipped with a note in
metrics.json. On the CPU the seeds of finetune and retrain train side by side in worker
processes (`segment.jobs`); --summary and --curves add the mean and std over seeds (DVC metrics)
and the mean training curves (DVC plots).
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from mmif.config import validated
from pipelines.common import load_params
from pipelines.tasks import add_task_arguments, base_folder, run_task, write_skipped

log = logging.getLogger(__name__)

HELP = "score semantic segmentation on fused images (frozen, finetune or retrain)"
DESCRIPTION = __doc__
OUTPUTS = {"metrics.json": "json", "confusion.npz": "npz", "curves.csv": "csv"}


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_task_arguments(p)


def load_section(args: argparse.Namespace):  # noqa: ANN201 (segmentation is imported lazily)
    """params.yaml (validated whole) and its `segment` section, with --device applied."""
    params = load_params(args, check_names=("segment",))
    sec = params.segment
    if args.device:
        sec.device = args.device
        validated(sec, f"{args.params}:segment")
    return params, sec


def run(args: argparse.Namespace) -> int:
    from mmif.runtime import resolve_device

    params, sec = load_section(args)
    base = base_folder(args, "segment")

    def train_one(seed: int, out: Path) -> None:
        from segmentation import NoTaskLabels
        from segmentation.train import finetune_and_evaluate, train_and_evaluate

        try:
            if sec.protocol == "finetune":
                metrics = finetune_and_evaluate(
                    args.fused,
                    args.data,
                    base / f"seed_{seed}",
                    out,
                    sec.schedule("finetune"),
                    seed,
                )
            else:
                metrics = train_and_evaluate(
                    args.fused, args.data, out, sec.schedule("retrain"), seed
                )
        except NoTaskLabels as exc:
            write_skipped(out, OUTPUTS, str(exc), args.method, seed)
            return
        log.info("%s seed %d (%s): mIoU=%.4f", args.method, seed, sec.protocol, metrics["mIoU"])

    def evaluate_frozen(seed: int, out: Path, requested: str) -> None:
        # torch's default CPU threads (every core), as in detection: on the idle 2-core AMD EPYC
        # a DVC run sees, 128 test images x 3 seeds took 6.3 s with two threads and 10.3 s with
        # one; with two other busy processes on the machine it was the reverse (25 s against
        # 16 s), because waiting threads spin. The confusion counts are identical either way.
        from segmentation import NoTaskLabels
        from segmentation.train import evaluate_frozen as frozen

        try:
            frozen(
                args.fused, args.data, base / f"seed_{seed}", out, sec.evaluation(), seed, requested
            )
        except NoTaskLabels as exc:
            write_skipped(out, OUTPUTS, str(exc), args.method, seed)

    on_cuda = resolve_device(sec.device, "segment.device").type == "cuda"
    return run_task(
        "segment",
        args,
        params,
        sec.protocol,
        sec.jobs,
        on_cuda,
        OUTPUTS,
        train_one,
        evaluate_frozen,
    )
