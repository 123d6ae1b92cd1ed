"""`mmif detect`: score one method's fused images with YOLO detection, per seed, under the
protocol of params.yaml (`detect.protocol`, see mmif.protocol):

- frozen: the shared detector of each seed (`mmif detect-base`, models/detect_base) scores the
  method's fused test images; nothing is trained, a method with test images only is scored too;
- finetune: the shared detector is fine-tuned on the method's fused train split, then scored;
- retrain: a detector is trained from scratch on the method's fused train split.

For every seed (`seeds` of params.yaml, or --seeds), writes to OUT/seed_S/: metrics.json
(protocol, mAP50, mAP50-95, precision, recall, per-class AP, ultralytics and torchmetrics
cross-checks), predictions.json (per test image, for the report's statistics) and curves.csv.
Datasets without detection labels are skipped with a note in metrics.json. On the CPU the seeds
of finetune and retrain train side by side in worker processes (`detect.jobs`); --summary and
--curves add the mean and std over seeds (DVC metrics) and the mean training curves (DVC plots).
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from mmif.config import validated
from pipelines.common import load_params
from pipelines.tasks import add_task_arguments, base_folder, run_task

log = logging.getLogger(__name__)

HELP = "score YOLO detection on fused images (frozen, finetune or retrain)"
DESCRIPTION = __doc__
OUTPUTS = {"metrics.json": "json", "predictions.json": "json", "curves.csv": "csv"}


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_task_arguments(p)


def load_section(args: argparse.Namespace):  # noqa: ANN201 (detection is imported lazily)
    """params.yaml (validated whole) and its `detect` section, with --device applied."""
    params = load_params(args)
    sec = params.detect
    if args.device:
        sec.device = args.device
        validated(sec, f"{args.params}:detect")
    return params, sec


def run(args: argparse.Namespace) -> int:
    from detection.config import ultralytics_device

    params, sec = load_section(args)
    base = base_folder(args, "detect")

    def train_one(seed: int, out: Path) -> None:
        from detection.train import finetune_and_evaluate, train_and_evaluate

        if sec.protocol == "finetune":
            cfg = sec.schedule("finetune")
            metrics = finetune_and_evaluate(
                args.fused, args.data, base / f"seed_{seed}", out, cfg, seed
            )
        else:
            metrics = train_and_evaluate(args.fused, args.data, out, sec.schedule("retrain"), seed)
        _log_scores(args.method, seed, metrics)

    def evaluate_frozen(seed: int, out: Path, requested: str) -> None:
        from detection.train import evaluate_frozen as frozen

        metrics = frozen(
            args.fused, args.data, base / f"seed_{seed}", out, sec.evaluation(), seed, requested
        )
        _log_scores(args.method, seed, metrics)

    on_cuda = ultralytics_device(sec.device) != "cpu"
    return run_task(
        "detect",
        args,
        params,
        sec.protocol,
        sec.jobs,
        on_cuda,
        OUTPUTS,
        train_one,
        evaluate_frozen,
    )


def _log_scores(method: str, seed: int, metrics: dict) -> None:
    log.info(
        "%s seed %d (%s): mAP50=%s mAP50-95=%s",
        method,
        seed,
        metrics["protocol"],
        _fmt(metrics["mAP50"]),
        _fmt(metrics["mAP50_95"]),
    )


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.4f}"
