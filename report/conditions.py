"""Task scores split by capture condition (day / night).

MSRS and the synthetic default name their images with a trailing `D` (day) or `N` (night), e.g.
`00012N`, `test_00003D`. Infrared and visible images help on different conditions (people are
dark in visible light at night), so the report shows per-class scores for each condition.

Detection: per-class AP50 recomputed from each run's predictions.json on the images of one
condition (`detection.ap`, the same matcher as the bootstrap). Segmentation: per-class IoU
from the confusion counts summed over the images of one condition. Both are averaged over seeds.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from detection.ap import average_precision, match_detections
from mmif.layout import CONDITIONS, condition_of
from report.loading import SeedRun, load_confusion
from report.tables import cells_table

__all__ = [
    "CONDITIONS",
    "condition_of",
    "detection_by_condition",
    "detection_condition_cells",
    "segmentation_by_condition",
    "segmentation_condition_cells",
]


def _conditions(stems: list[str]) -> dict[str, np.ndarray] | None:
    """condition -> 0/1 image weights; None unless every stem names a condition and both occur."""
    labels = [condition_of(s) for s in stems]
    if not labels or any(c is None for c in labels) or len(set(labels)) < 2:
        return None
    arr = np.asarray(labels)
    return {c: (arr == c).astype(np.float64) for c in CONDITIONS.values() if (arr == c).any()}


def detection_by_condition(
    runs: dict[str, dict[int, SeedRun]], methods: list[str], max_dets: int = 100
) -> pd.DataFrame:
    """method x (condition, class) AP50, mean over seeds; empty when stems carry no condition."""
    return _means(detection_condition_cells(runs, methods, max_dets), methods)


def segmentation_by_condition(
    runs: dict[str, dict[int, SeedRun]], methods: list[str]
) -> pd.DataFrame:
    """method x (condition, class) IoU from summed confusion counts, mean over seeds."""
    return _means(segmentation_condition_cells(runs, methods), methods)


def detection_condition_cells(
    runs: dict[str, dict[int, SeedRun]], methods: list[str], max_dets: int = 100
) -> dict[tuple[str, str], list[float]]:
    """(method, "class (condition)") -> per-seed AP50 on that condition's images."""
    cells: dict[tuple[str, str, str], list[float]] = {}
    for m in methods:
        for run in runs.get(m, {}).values():
            p = run.predictions
            if p is None:
                continue
            weights = _conditions(p.stems)
            if weights is None:
                continue
            matched = match_detections(p.images, len(p.classes), 0.5, max_dets)
            for cond, w in weights.items():
                for name, ap in zip(p.classes, average_precision(matched, w), strict=True):
                    if np.isfinite(ap):
                        cells.setdefault((m, cond, name), []).append(float(ap))
    return _columns(cells)


def segmentation_condition_cells(
    runs: dict[str, dict[int, SeedRun]], methods: list[str]
) -> dict[tuple[str, str], list[float]]:
    """(method, "class (condition)") -> per-seed IoU from the condition's summed confusion."""
    cells: dict[tuple[str, str, str], list[float]] = {}
    for m in methods:
        for run in runs.get(m, {}).values():
            path = run.file("confusion.npz")
            if path is None:
                continue
            conf = load_confusion(path)
            weights = _conditions(conf.stems)
            if weights is None:
                continue
            for cond, w in weights.items():
                total = np.tensordot(w, conf.confusion.astype(np.float64), axes=1)  # C x C
                inter = np.diag(total)
                union = total.sum(0) + total.sum(1) - inter
                present = total.sum(1) > 0  # classes with ground truth in this condition
                for c, name in enumerate(conf.class_names):
                    if present[c] and union[c] > 0:
                        cells.setdefault((m, cond, name), []).append(float(inter[c] / union[c]))
    return _columns(cells)


def _columns(cells: dict[tuple[str, str, str], list[float]]) -> dict[tuple[str, str], list[float]]:
    """(method, condition, class) cells keyed by method and "class (condition)", ordered class
    by class with day next to night."""
    names: list[str] = []
    for _, _, name in cells:
        if name not in names:
            names.append(name)
    conds = [c for c in CONDITIONS.values() if any(k[1] == c for k in cells)]
    methods = list(dict.fromkeys(k[0] for k in cells))
    return {
        (m, f"{name} ({cond})"): cells[(m, cond, name)]
        for name in names
        for cond in conds
        for m in methods
        if (m, cond, name) in cells
    }


def _means(cells: dict[tuple[str, str], list[float]], methods: list[str]) -> pd.DataFrame:
    if not cells:
        return pd.DataFrame()
    return cells_table(cells, methods, lambda v: float(np.mean(v)) if v else np.nan)
