"""Per-class IoU from confusion counts: the one definition of the segment stage and the report.

In the core (numpy only) because both the segment stage and the report's significance tests
(which resample confusion counts) use it; the report does not depend on the segmentation code.
"""

from __future__ import annotations

import math

import numpy as np


def iou_from_confusion(confusion: np.ndarray) -> np.ndarray:
    """Per-class IoU from (..., C, C) counts (rows truth, columns prediction; a torch tensor
    on the CPU works too).

    NaN where a class has no truth pixel, so it is left out of mIoU (`mean_iou`); pixels wrongly
    predicted as such a class still count against their true class.
    """
    conf = np.asarray(confusion, dtype=np.float64)
    tp = np.diagonal(conf, axis1=-2, axis2=-1)
    truth = conf.sum(axis=-1)
    union = truth + conf.sum(axis=-2) - tp
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(truth > 0, tp / union, np.nan)


def mean_iou(iou: np.ndarray) -> float:
    """Mean over the classes with a defined IoU; NaN when none has one."""
    present = iou[~np.isnan(iou)]
    return float(present.mean()) if present.size else math.nan
