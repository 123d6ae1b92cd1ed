"""COCO-style average precision at one IoU threshold, vectorised over weighted image sets.

The bootstrap needs mAP50 on a thousand resampled test sets per method and seed. Matching a
prediction to a ground-truth box depends only on its own image, so it is done once
(`match_detections`); every resampled set is then a vector of image weights (how often each
image was drawn), and the precision-recall curve of a weighted set follows from cumulative sums
of weighted true and false positives (`average_precision`). An image drawn k times counts as k
copies of its boxes, exactly as if the copies had been appended to the test set.

Conventions follow the COCO evaluator (and torchmetrics' MeanAveragePrecision): per image and
class at most `max_dets` predictions, highest score first; a prediction matches the unmatched
ground-truth box of the same class with the highest IoU if that IoU is >= the threshold;
boxes are (x1, y1, x2, y2) in pixels with area w * h; precision is made monotone from the right
and read at the 101 recall points 0, 0.01, ..., 1; classes without ground truth in the set are
left out of the mean (NaN).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

RECALL_POINTS = np.linspace(0.0, 1.0, 101)


@dataclass(frozen=True)
class ImageDetections:
    """Ground truth and predictions of one image, boxes (x1, y1, x2, y2) in pixels.

    gt: (G, 5) rows [cls, x1, y1, x2, y2]; pred: (P, 6) rows [cls, score, x1, y1, x2, y2].
    """

    gt: np.ndarray
    pred: np.ndarray

    @classmethod
    def from_lists(
        cls, gt: Sequence[Sequence[float]], pred: Sequence[Sequence[float]]
    ) -> ImageDetections:
        g = np.asarray(gt, dtype=np.float64).reshape(-1, 5)
        p = np.asarray(pred, dtype=np.float64).reshape(-1, 6)
        return cls(gt=g, pred=p)


@dataclass(frozen=True)
class MatchedDetections:
    """Every kept prediction of a test set with its match flag, sorted by descending score.

    image_index, class_index, score, is_tp: (P,) arrays; n_gt: (N_images, C) ground-truth
    boxes per image and class.
    """

    image_index: np.ndarray
    class_index: np.ndarray
    score: np.ndarray
    is_tp: np.ndarray
    n_gt: np.ndarray

    @property
    def n_images(self) -> int:
        return int(self.n_gt.shape[0])

    @property
    def n_classes(self) -> int:
        return int(self.n_gt.shape[1])


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU matrix (len(a), len(b)) of (x1, y1, x2, y2) boxes, area = w * h (COCO, no +1)."""
    if len(a) == 0 or len(b) == 0:
        return np.zeros((len(a), len(b)))
    lt = np.maximum(a[:, None, :2], b[None, :, :2])
    rb = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.clip(rb - lt, 0.0, None).prod(axis=2)
    area_a = np.clip(a[:, 2:] - a[:, :2], 0.0, None).prod(axis=1)
    area_b = np.clip(b[:, 2:] - b[:, :2], 0.0, None).prod(axis=1)
    union = area_a[:, None] + area_b[None, :] - inter
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(union > 0, inter / union, 0.0)


def _greedy_match(iou: np.ndarray, threshold: float) -> np.ndarray:
    """COCO greedy matching: predictions (rows, best first) take the best free gt with IoU >= t."""
    is_tp = np.zeros(iou.shape[0], dtype=bool)
    if iou.shape[1] == 0:
        return is_tp
    free = np.ones(iou.shape[1], dtype=bool)
    # a prediction without any gt at IoU >= t can neither match nor take a gt from a later one:
    # only the others need the (sequential) greedy pass; at the low confidence threshold of a
    # test evaluation they are a small part of the up to 300 predictions per image
    for i in np.flatnonzero((iou >= threshold).any(axis=1)):
        cand = np.where(free, iou[i], -1.0)
        j = int(np.argmax(cand))
        if cand[j] >= threshold:
            free[j] = False
            is_tp[i] = True
    return is_tp


def match_detections(
    images: Sequence[ImageDetections],
    n_classes: int,
    iou_threshold: float = 0.5,
    max_dets: int = 100,
) -> MatchedDetections:
    """Match the predictions of each image and class to its ground truth (done once per run)."""
    img_idx, cls_idx, scores, tps = [], [], [], []
    n_gt = np.zeros((len(images), n_classes), dtype=np.int64)
    for i, im in enumerate(images):
        gt_cls = im.gt[:, 0].astype(np.int64)
        pred_cls = im.pred[:, 0].astype(np.int64)
        for arr, what in ((gt_cls, "ground-truth"), (pred_cls, "predicted")):
            if len(arr) and (arr.min() < 0 or arr.max() >= n_classes):
                raise ValueError(
                    f"image {i}: {what} class id {int(arr.max())} outside 0..{n_classes - 1}"
                )
        n_gt[i] = np.bincount(gt_cls, minlength=n_classes)
        if not len(pred_cls):
            continue
        # by class, then by descending score (stable), at most max_dets per class
        order = np.lexsort((-im.pred[:, 1], pred_cls))
        cls_sorted = pred_cls[order]
        first = np.searchsorted(cls_sorted, cls_sorted, side="left")
        order = order[np.arange(len(order)) - first < max_dets]
        p = im.pred[order]
        iou = box_iou(p[:, 2:6], im.gt[:, 1:5])
        # one greedy pass per image: boxes of another class never match (IoU -1)
        iou[p[:, 0].astype(np.int64)[:, None] != gt_cls[None, :]] = -1.0
        img_idx.append(np.full(len(p), i))
        cls_idx.append(p[:, 0].astype(np.int64))
        scores.append(p[:, 1])
        tps.append(_greedy_match(iou, iou_threshold))
    if scores:
        image_index = np.concatenate(img_idx)
        class_index = np.concatenate(cls_idx)
        score = np.concatenate(scores)
        is_tp = np.concatenate(tps)
    else:
        image_index = class_index = np.zeros(0, dtype=np.int64)
        score = np.zeros(0)
        is_tp = np.zeros(0, dtype=bool)
    order = np.argsort(-score, kind="mergesort")
    return MatchedDetections(
        image_index=image_index[order].astype(np.int64),
        class_index=class_index[order].astype(np.int64),
        score=score[order],
        is_tp=is_tp[order],
        n_gt=n_gt,
    )


def _curve_ap(cum_tp: np.ndarray, cum_fp: np.ndarray, n_gt: np.ndarray) -> np.ndarray:
    """101-point AP of each row from the cumulative weighted TP/FP counts at the true positives.

    cum_tp, cum_fp: (R, T) at each true positive in score order (FPs ranked before it included);
    n_gt: (R,). Only true positives are needed: recall rises only there and precision falls
    between them, so they carry every value of the interpolated (right-maximum) precision.
    """
    out = np.full(cum_tp.shape[0], np.nan)
    has_gt = n_gt > 0
    if cum_tp.shape[1] == 0:
        out[has_gt] = 0.0
        return out
    rows = np.flatnonzero(has_gt)
    n = cum_tp.shape[1]
    recall = cum_tp[rows] / n_gt[rows, None]
    precision = cum_tp[rows] / (cum_tp[rows] + cum_fp[rows] + np.spacing(1))
    precision = np.maximum.accumulate(precision[:, ::-1], axis=1)[:, ::-1]
    # first position whose recall reaches each recall point: a row's recall never falls (its
    # cumulative TP weight only grows), so a binary search per row counts the positions below
    # each point exactly; twice as fast over the report's bootstrap as comparing all n x 101
    idx = np.empty((len(rows), len(RECALL_POINTS)), dtype=np.intp)
    for k, row in enumerate(recall):
        idx[k] = np.searchsorted(row, RECALL_POINTS, side="left")
    q = np.take_along_axis(precision, np.minimum(idx, n - 1), axis=1)
    out[rows] = np.where(idx < n, q, 0.0).mean(axis=1)
    return out


def average_precision(
    matched: MatchedDetections, image_weights: np.ndarray | None = None
) -> np.ndarray:
    """Per-class AP of weighted image sets.

    image_weights: (N_images,) or (R, N_images) non-negative counts (None: every image once).
    Returns (C,) or (R, C) AP in [0, 1]; NaN where a class has no ground truth in the set.
    """
    single = image_weights is None or np.ndim(image_weights) == 1
    w = (
        np.ones((1, matched.n_images))
        if image_weights is None
        else np.atleast_2d(image_weights).astype(np.float64)
    )
    if w.shape[1] != matched.n_images:
        raise ValueError(f"image_weights has {w.shape[1]} columns for {matched.n_images} images")
    n_gt = w @ matched.n_gt.astype(np.float64)  # (R, C)
    out = np.full((w.shape[0], matched.n_classes), np.nan)
    for c in range(matched.n_classes):
        sel = matched.class_index == c
        img = matched.image_index[sel]
        tp = matched.is_tp[sel]
        tp_pos = np.flatnonzero(tp)
        # each false positive falls into the bucket "number of true positives ranked before it";
        # the FP weight before true positive j is the weight of buckets 0..j, a matrix product
        fp_bucket = np.searchsorted(tp_pos, np.flatnonzero(~tp))
        fp_counts = np.zeros((matched.n_images, len(tp_pos) + 1))
        np.add.at(fp_counts, (img[~tp], fp_bucket), 1.0)
        cum_fp = np.cumsum(w @ fp_counts, axis=1)[:, : len(tp_pos)]
        cum_tp = np.cumsum(w[:, img[tp_pos]], axis=1)
        out[:, c] = _curve_ap(cum_tp, cum_fp, n_gt[:, c])
    return out[0] if single else out


def mean_average_precision(
    matched: MatchedDetections, image_weights: np.ndarray | None = None
) -> np.ndarray:
    """mAP over the classes with ground truth: scalar array for one set, (R,) for R sets."""
    ap = average_precision(matched, image_weights)
    with np.errstate(all="ignore"):
        valid = ~np.isnan(ap)
        total = np.where(valid, ap, 0.0).sum(axis=-1)
        count = valid.sum(axis=-1)
        return np.where(count > 0, total / np.maximum(count, 1), np.nan)


#: IoU thresholds of COCO's AP50-95
COCO_IOU_THRESHOLDS = np.linspace(0.5, 0.95, 10)


def detection_scores(
    images: Sequence[ImageDetections], class_names: Sequence[str], max_dets: int = 300
) -> dict:
    """mAP50, mAP50-95 and per-class AP50 / AP50-95 of a test set, by this module's COCO-style AP.

    The one AP definition of the study: the detection stage writes these values as `mAP50`,
    `mAP50_95` and per-class `AP50`, and the report's intervals, tests and per-condition tables
    recompute the same function on subsets and resampled sets. Values are None where undefined
    (a class without ground truth; no ground truth at all).
    """
    n = len(class_names)
    per_threshold = np.stack(
        [
            average_precision(match_detections(images, n, float(t), max_dets))
            for t in COCO_IOU_THRESHOLDS
        ]
    )  # (10, C)
    ap50, ap5095 = per_threshold[0], per_threshold.mean(axis=0)

    def value(x: float) -> float | None:
        return float(x) if np.isfinite(x) else None

    def mean(x: np.ndarray) -> float | None:
        x = x[np.isfinite(x)]
        return float(x.mean()) if x.size else None

    return {
        "mAP50": mean(ap50),
        "mAP50_95": mean(ap5095),
        "per_class": {
            name: {"AP50": value(ap50[c]), "AP50_95": value(ap5095[c])}
            for c, name in enumerate(class_names)
        },
    }
