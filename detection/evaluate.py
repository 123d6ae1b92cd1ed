"""Detection results in pixels, and mAP from them by two independent implementations.

An image record (one entry of predictions.json's "images") is

    {"stem": str, "width": int, "height": int,
     "gt":   [[cls, x1, y1, x2, y2], ...],          # pixels, corners
     "pred": [[cls, score, x1, y1, x2, y2], ...]}   # pixels, corners, score in [0, 1]

`coco_map` evaluates a list of records with torchmetrics' MeanAveragePrecision (COCO protocol,
faster-coco-eval backend); `ultralytics_map` with ultralytics' own matching and AP code. The
list may repeat records (a bootstrap resample): each entry counts as a separate image.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

ImageRecord = dict[str, Any]


def yolo_to_pixel_boxes(
    rows: Sequence[Sequence[float]], width: int, height: int
) -> list[list[float]]:
    """[(cls, cx, cy, w, h) normalised] -> [[cls, x1, y1, x2, y2] in pixels]."""
    out = []
    for cls, cx, cy, w, h in rows:
        out.append(
            [
                int(cls),
                (cx - w / 2) * width,
                (cy - h / 2) * height,
                (cx + w / 2) * width,
                (cy + h / 2) * height,
            ]
        )
    return out


def round_record(record: ImageRecord, digits: int = 2, score_digits: int = 5) -> ImageRecord:
    """A copy with coordinates rounded to `digits` and scores to `score_digits` (for JSON size)."""
    return {
        **record,
        "gt": [[int(r[0]), *(round(float(v), digits) for v in r[1:5])] for r in record["gt"]],
        "pred": [
            [
                int(r[0]),
                round(float(r[1]), score_digits),
                *(round(float(v), digits) for v in r[2:6]),
            ]
            for r in record["pred"]
        ],
    }


def _as_arrays(
    record: ImageRecord,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    gt = np.asarray(record["gt"], dtype=np.float64).reshape(-1, 5)
    pred = np.asarray(record["pred"], dtype=np.float64).reshape(-1, 6)
    return (
        gt[:, 1:5],
        gt[:, 0].astype(np.int64),
        pred[:, 2:6],
        pred[:, 1],
        pred[:, 0].astype(np.int64),
    )


def _nan_to_none(value: float) -> float | None:
    return None if value is None or math.isnan(value) or value < 0 else float(value)


def coco_map(
    records: Sequence[ImageRecord], class_names: Sequence[str], max_det: int = 300
) -> dict[str, Any]:
    """COCO mAP of the records by torchmetrics (faster-coco-eval backend).

    Returns {"mAP50", "mAP50_95", "per_class": {name: {"AP50", "AP50_95"}}}; values in [0, 1],
    None where undefined (a class without ground truth, or no ground truth at all). Up to
    max(max_det, 10) detections per image and class count (COCO counts 100; predictions.json
    already holds at most DetectConfig.max_det per image, ultralytics' 300 by default).

    COCO and ultralytics differ in small ways: ultralytics integrates precision with the
    trapezoidal rule and ramps it linearly to zero beyond the highest recall reached, so it
    scores a perfect detector 0.995 (COCO: 1.0) and rates classes whose recall stays low higher
    than COCO does. With the low confidence threshold of the test evaluation the two agree to
    about 0.01 on real detectors.
    """
    from torchmetrics.detection import MeanAveragePrecision

    metric = MeanAveragePrecision(
        box_format="xyxy",
        iou_type="bbox",
        max_detection_thresholds=[1, 10, max(max_det, 10)],
        # per-class APs are read from the precision array of the one evaluation below:
        # class_metrics=True would evaluate the whole set again for every class (3x the time)
        class_metrics=False,
        extended_summary=True,
        backend="faster_coco_eval",
    )
    preds, targets = [], []
    for record in records:
        gt_boxes, gt_cls, boxes, scores, cls = _as_arrays(record)
        preds.append(
            {
                "boxes": torch.as_tensor(boxes, dtype=torch.float32),
                "scores": torch.as_tensor(scores, dtype=torch.float32),
                "labels": torch.as_tensor(cls, dtype=torch.int64),
            }
        )
        targets.append(
            {
                "boxes": torch.as_tensor(gt_boxes, dtype=torch.float32),
                "labels": torch.as_tensor(gt_cls, dtype=torch.int64),
            }
        )
    metric.update(preds, targets)
    coco_log = logging.getLogger("faster_coco_eval")
    level = coco_log.level
    coco_log.setLevel(logging.WARNING)  # it logs the whole COCO summary table at INFO
    try:
        result = metric.compute()
    finally:
        coco_log.setLevel(level)

    per_class: dict[str, dict[str, float | None]] = {
        name: {"AP50": None, "AP50_95": None} for name in class_names
    }
    # precision: T x R x K x A x M (IoU thresholds, recall points, classes, areas, max dets); -1 = undefined
    precision = result["precision"]
    classes = result["classes"].reshape(-1).tolist()
    for k, c in enumerate(classes):
        if not 0 <= c < len(class_names):
            continue
        p = precision[:, :, k, 0, -1]
        if (p < 0).all():
            continue
        per_class[class_names[c]] = {
            "AP50": float(p[0][p[0] >= 0].mean()) if (p[0] >= 0).any() else None,
            "AP50_95": float(p[p >= 0].mean()),
        }
    return {
        "mAP50": _nan_to_none(float(result["map_50"])),
        "mAP50_95": _nan_to_none(float(result["map"])),
        "per_class": per_class,
    }


def ultralytics_map(records: Sequence[ImageRecord], class_names: Sequence[str]) -> dict[str, Any]:
    """mAP of the records by ultralytics' own code (its matching and 101-point AP).

    Same return format as `coco_map`, plus "precision" and "recall" (at the confidence of best
    mean F1, as ultralytics reports them).
    """
    from detection.offline import import_ultralytics

    import_ultralytics()
    from ultralytics.engine.validator import BaseValidator
    from ultralytics.utils.metrics import DetMetrics, box_iou

    iouv = torch.linspace(0.5, 0.95, 10)
    # match_predictions only reads `iouv`; a bare instance avoids the validator's set-up (run folders)
    matcher = BaseValidator.__new__(BaseValidator)
    matcher.iouv = iouv
    metrics = DetMetrics(names=dict(enumerate(class_names)))
    for record in records:
        gt_boxes, gt_cls, boxes, scores, cls = _as_arrays(record)
        order = np.argsort(
            -scores, kind="stable"
        )  # matching walks detections by descending confidence
        boxes, scores, cls = boxes[order], scores[order], cls[order]
        if len(gt_cls) and len(cls):
            iou = box_iou(
                torch.as_tensor(gt_boxes, dtype=torch.float32),
                torch.as_tensor(boxes, dtype=torch.float32),
            )
            tp = (
                matcher.match_predictions(torch.as_tensor(cls), torch.as_tensor(gt_cls), iou)
                .cpu()
                .numpy()
            )
        else:
            tp = np.zeros((len(cls), iouv.numel()), dtype=bool)
        metrics.update_stats(
            {
                "tp": tp,
                "conf": scores,
                "pred_cls": cls.astype(np.float64),
                "target_cls": gt_cls.astype(np.float64),
                "target_img": np.unique(gt_cls).astype(np.float64),
                "im_name": str(record.get("stem", "")),
            }
        )
    metrics.process()
    return summarise_det_metrics(metrics, class_names)


def summarise_det_metrics(metrics: Any, class_names: Sequence[str]) -> dict[str, Any]:
    """An ultralytics DetMetrics (after `process`) as {"mAP50", "mAP50_95", "precision", "recall", "per_class"}."""
    box = metrics.box
    per_class: dict[str, dict[str, float | None]] = {
        name: {"AP50": None, "AP50_95": None} for name in class_names
    }
    for i, c in enumerate(np.asarray(metrics.ap_class_index).tolist()):
        if 0 <= c < len(class_names):
            per_class[class_names[c]] = {"AP50": float(box.ap50[i]), "AP50_95": float(box.ap[i])}
    has_gt = len(np.asarray(metrics.ap_class_index)) > 0
    return {
        "mAP50": float(box.map50) if has_gt else None,
        "mAP50_95": float(box.map) if has_gt else None,
        "precision": float(box.mp) if has_gt else None,
        "recall": float(box.mr) if has_gt else None,
        "per_class": per_class,
    }
