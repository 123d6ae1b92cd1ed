"""Paired bootstrap over test images: does a method beat the baselines on the tasks?

For each task one statistic is recomputed on resampled test sets: detection mAP50 (COCO-style,
from each run's predictions.json, `mmif.report.ap`) and segmentation mIoU (from the summed
per-image confusion counts of confusion.npz). All methods and seeds see the same B resampled
image sets (drawn once with `ReportConfig.seed` on the test images every run shares), which
makes the comparison paired. Seeds are paired by seed number and pooled by averaging the
per-seed differences (`stats.paired_bootstrap`); when a method and a baseline share no seed,
each side's seed average is compared instead (noted in the `pairing` column).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from mmif.logging_utils import progress_bar
from mmif.report.ap import match_detections, mean_average_precision
from mmif.report.config import ReportConfig
from mmif.report.loading import (
    ResultsError,
    SeedRun,
    load_confusion,
    load_predictions,
)
from mmif.report.stats import iou_from_confusion, nanmean_last, paired_bootstrap, resample_counts

log = logging.getLogger(__name__)

#: marks of significant gains, one per baseline in config order
GAIN_MARKS = ("*", "+", "#", "^", "~")
#: the statistic tested per task
TESTED_SCORE = {"detect": "mAP50", "segment": "mIoU"}
COLUMNS = [
    "task", "score", "method", "baseline", "pairing", "n_seeds", "n_images", "method_value",
    "baseline_value", "delta", "ci_low", "ci_high", "p_value", "significant", "verdict", "mark",
]  # fmt: skip


@dataclass
class TaskBootstrap:
    """Full-set value and bootstrap values of one task statistic for every method and seed."""

    task: str
    score: str
    stems: list[str]
    full: dict[str, dict[int, float]] = field(default_factory=dict)  # method -> seed -> value
    boot: dict[str, dict[int, np.ndarray]] = field(default_factory=dict)  # method -> seed -> (B,)


@dataclass
class Significance:
    comparisons: pd.DataFrame
    tasks: dict[str, TaskBootstrap]
    notes: list[str]


def mark_for(baseline_index: int) -> str:
    return GAIN_MARKS[baseline_index % len(GAIN_MARKS)]


def _common_stems(
    stem_lists: dict[tuple[str, int], list[str]], task: str, notes: list[str]
) -> list[str]:
    sets = [set(s) for s in stem_lists.values()]
    common = set.intersection(*sets) if sets else set()
    if any(len(s) != len(common) for s in sets):
        notes.append(
            f"{task}: runs cover different test images; the bootstrap uses the {len(common)} images all runs share"
        )
    return sorted(common)


def detection_bootstrap(
    runs: dict[str, dict[int, SeedRun]], cfg: ReportConfig, notes: list[str]
) -> TaskBootstrap | None:
    """mAP50 on the full test set and on `cfg.bootstrap_samples` resampled sets per run."""
    preds = {}
    for method, seeds in runs.items():
        for seed, run in seeds.items():
            path = run.file("predictions.json")
            if path is None:
                notes.append(
                    f"detect/{method}/seed_{seed}: no predictions.json, left out of the bootstrap"
                )
                continue
            preds[(method, seed)] = load_predictions(path)
    if not preds:
        return None
    first_key, first = next(iter(preds.items()))
    for key, p in preds.items():
        if p.classes != first.classes:
            raise ResultsError(
                f"detect/{key[0]}/seed_{key[1]}/predictions.json: classes {p.classes} differ from "
                f"{first.classes} of detect/{first_key[0]}/seed_{first_key[1]}; re-run `mmif detect` on one dataset"
            )
    stems = _common_stems({k: p.stems for k, p in preds.items()}, "detect", notes)
    if not stems:
        notes.append("detect: the runs share no test image; no bootstrap")
        return None
    weights = resample_counts(len(stems), cfg.bootstrap_samples, cfg.seed)
    out = TaskBootstrap("detect", "mAP50", stems)
    for (method, seed), p in progress_bar(
        preds.items(), desc="bootstrap detect", unit="run", disable=len(preds) < 4
    ):
        by_stem = p.by_stem()
        matched = match_detections([by_stem[s] for s in stems], len(p.classes), 0.5, cfg.max_dets)
        out.full.setdefault(method, {})[seed] = float(mean_average_precision(matched))
        out.boot.setdefault(method, {})[seed] = mean_average_precision(matched, weights)
    return out


def segmentation_bootstrap(
    runs: dict[str, dict[int, SeedRun]], cfg: ReportConfig, notes: list[str]
) -> TaskBootstrap | None:
    """mIoU from summed confusion counts on the full test set and on resampled sets per run."""
    confs = {}
    for method, seeds in runs.items():
        for seed, run in seeds.items():
            path = run.file("confusion.npz")
            if path is None:
                notes.append(
                    f"segment/{method}/seed_{seed}: no confusion.npz, left out of the bootstrap"
                )
                continue
            confs[(method, seed)] = (load_confusion(path), run)
    if not confs:
        return None
    stems = _common_stems({k: c.stems for k, (c, _) in confs.items()}, "segment", notes)
    if not stems:
        notes.append("segment: the runs share no test image; no bootstrap")
        return None
    weights = resample_counts(len(stems), cfg.bootstrap_samples, cfg.seed)
    out = TaskBootstrap("segment", "mIoU", stems)
    for (method, seed), (conf, run) in confs.items():
        keep = _miou_classes(conf.class_names, run)
        counts = conf.reindexed(stems)
        c = counts.shape[1]
        full_iou = iou_from_confusion(counts.sum(axis=0))[keep]
        out.full.setdefault(method, {})[seed] = float(nanmean_last(full_iou))
        summed = (weights @ counts.reshape(len(stems), c * c)).reshape(-1, c, c)
        out.boot.setdefault(method, {})[seed] = nanmean_last(iou_from_confusion(summed)[:, keep])
    return out


def _miou_classes(class_names: list[str], run: SeedRun) -> np.ndarray:
    """Classes averaged into mIoU: those metrics.json lists per class (so the recomputed value
    follows the segment stage's choice, e.g. with or without background), else all."""
    listed = [n for n in run.per_class if n in class_names]
    if not listed:
        return np.arange(len(class_names))
    return np.array([class_names.index(n) for n in listed])


def compare(task: TaskBootstrap, baselines: list[str], cfg: ReportConfig) -> list[dict]:
    """One row per (method, baseline) present in `task`."""
    rows = []
    for bi, baseline in enumerate(baselines):
        if baseline not in task.full:
            continue
        for method in task.full:
            if method == baseline:
                continue
            shared = sorted(set(task.full[method]) & set(task.full[baseline]))
            if shared:
                pairing = "by seed"
                mf = [task.full[method][s] for s in shared]
                bf = [task.full[baseline][s] for s in shared]
                mb = np.stack([task.boot[method][s] for s in shared])
                bb = np.stack([task.boot[baseline][s] for s in shared])
                n_seeds = len(shared)
            else:
                pairing = "seed means (no shared seed)"
                mf = [np.mean(list(task.full[method].values()))]
                bf = [np.mean(list(task.full[baseline].values()))]
                mb = np.mean(np.stack(list(task.boot[method].values())), axis=0, keepdims=True)
                bb = np.mean(np.stack(list(task.boot[baseline].values())), axis=0, keepdims=True)
                n_seeds = min(len(task.full[method]), len(task.full[baseline]))
            cmp = paired_bootstrap(mf, bf, mb, bb, cfg.ci_level)
            significant = bool(
                np.isfinite(cmp.p_value) and cmp.p_value < cfg.alpha and cmp.delta != 0
            )
            verdict = ("gain" if cmp.delta > 0 else "loss") if significant else "n.s."
            rows.append(
                {
                    "task": task.task,
                    "score": task.score,
                    "method": method,
                    "baseline": baseline,
                    "pairing": pairing,
                    "n_seeds": n_seeds,
                    "n_images": len(task.stems),
                    "method_value": float(np.mean(mf)),
                    "baseline_value": float(np.mean(bf)),
                    "delta": cmp.delta,
                    "ci_low": cmp.ci_low,
                    "ci_high": cmp.ci_high,
                    "p_value": cmp.p_value,
                    "significant": significant,
                    "verdict": verdict,
                    "mark": mark_for(bi) if verdict == "gain" else "",
                }
            )
    return rows


BOOTSTRAPS: dict[str, Callable[..., TaskBootstrap | None]] = {
    "detect": detection_bootstrap,
    "segment": segmentation_bootstrap,
}


def significance(runs: dict[str, dict[str, dict[int, SeedRun]]], cfg: ReportConfig) -> Significance:
    """Bootstrap every task that has runs and compare each method with each baseline."""
    notes: list[str] = []
    tasks: dict[str, TaskBootstrap] = {}
    rows: list[dict] = []
    if cfg.bootstrap_samples == 0:
        notes.append("bootstrap_samples is 0: no significance test")
        return Significance(pd.DataFrame(columns=COLUMNS), tasks, notes)
    for task, fn in BOOTSTRAPS.items():
        task_runs = runs.get(task) or {}
        if not task_runs:
            continue
        boot = fn(task_runs, cfg, notes)
        if boot is None:
            continue
        tasks[task] = boot
        missing = [b for b in cfg.baselines if b not in boot.full]
        if missing:
            notes.append(
                f"{task}: baseline(s) {', '.join(missing)} have no runs; no comparison with them"
            )
        task_rows = compare(boot, list(cfg.baselines), cfg)
        rows.extend(task_rows)
        log.info(
            "%s: bootstrap of %s on %d images, %d comparisons",
            task,
            boot.score,
            len(boot.stems),
            len(task_rows),
        )
    return Significance(pd.DataFrame(rows, columns=COLUMNS), tasks, notes)
