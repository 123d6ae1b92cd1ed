"""mAP from pixel records: torchmetrics (COCO) and ultralytics must agree where the answer is known."""

from __future__ import annotations

import pytest

from detection.evaluate import coco_map, round_record, ultralytics_map, yolo_to_pixel_boxes

CLASSES = ["person", "car"]


def _image(stem: str, gt: list, pred: list, width: int = 100, height: int = 80) -> dict:
    return {"stem": stem, "width": width, "height": height, "gt": gt, "pred": pred}


def _perfect(gt: list, score: float = 0.9) -> list:
    return [[c, score, *box] for c, *box in gt]


def _both(records: list) -> tuple[dict, dict]:
    return coco_map(records, CLASSES), ultralytics_map(records, CLASSES)


# ultralytics integrates the precision envelope with the trapezoidal rule on 101 points, which
# caps a perfect AP at 0.995 (COCO gives 1.0); beyond that the two must agree exactly here
UL_TOL = 0.006


GT_A = [[0, 10, 10, 30, 50], [1, 50, 20, 90, 60]]
GT_B = [[0, 60, 5, 75, 40]]


def test_yolo_to_pixel_boxes() -> None:
    boxes = yolo_to_pixel_boxes([(1, 0.5, 0.25, 0.2, 0.5)], width=200, height=100)
    assert boxes == [
        [1, pytest.approx(80.0), pytest.approx(0.0), pytest.approx(120.0), pytest.approx(50.0)]
    ]


def test_round_record_keeps_structure() -> None:
    rec = round_record(_image("a", [[0, 1.234567, 2, 3, 4]], [[1, 0.1234567, 1.005, 2, 3, 4]]))
    assert rec["gt"] == [[0, 1.23, 2.0, 3.0, 4.0]]
    assert rec["pred"][0][:2] == [1, 0.12346]


def test_perfect_predictions_score_one() -> None:
    records = [_image("a", GT_A, _perfect(GT_A)), _image("b", GT_B, _perfect(GT_B, 0.8))]
    tm, ul = _both(records)
    for result, tol in ((tm, 1e-6), (ul, UL_TOL)):
        assert result["mAP50"] == pytest.approx(1.0, abs=tol)
        assert result["mAP50_95"] == pytest.approx(1.0, abs=tol)
        assert result["per_class"]["car"]["AP50"] == pytest.approx(1.0, abs=tol)


def test_missed_class_halves_the_mean() -> None:
    # person found perfectly, car never predicted: AP person 1, AP car 0, mean 0.5
    pred = [p for p in _perfect(GT_A) if p[0] == 0]
    tm, ul = _both([_image("a", GT_A, pred)])
    for result, tol in ((tm, 1e-6), (ul, UL_TOL)):
        assert result["mAP50"] == pytest.approx(0.5, abs=tol)
        assert result["per_class"]["person"]["AP50"] == pytest.approx(1.0, abs=tol)
        assert result["per_class"]["car"]["AP50"] == pytest.approx(0.0, abs=1e-6)


def test_shifted_boxes_pass_only_low_iou_thresholds() -> None:
    # a 100 x 100 box shifted right by 23 px: IoU = 77 / 123 = 0.626 -> correct at 0.50, 0.55, 0.60 only,
    # so AP50 = 1 and AP50-95 = 3 / 10
    gt = [[0, 0, 0, 100, 100]]
    pred = [[0, 0.9, 23, 0, 123, 100]]
    tm, ul = _both([_image("a", gt, pred, width=200, height=200)])
    for result, tol in ((tm, 1e-6), (ul, UL_TOL)):
        assert result["mAP50"] == pytest.approx(1.0, abs=tol)
        assert result["mAP50_95"] == pytest.approx(0.3, abs=tol)


def test_false_positive_above_true_positive_halves_precision() -> None:
    # one person, a confident false positive elsewhere and the true box below it: precision 1/2 at
    # recall 1, so AP = 0.5 by both the COCO and the ultralytics interpolation
    gt = [[0, 10, 10, 30, 50]]
    pred = [[0, 0.9, 60, 10, 80, 50], [0, 0.8, 10, 10, 30, 50]]
    tm, ul = _both([_image("a", gt, pred)])
    assert tm["mAP50"] == pytest.approx(0.5, abs=0.01)
    assert ul["mAP50"] == pytest.approx(0.5, abs=0.01)


def test_wrong_class_is_not_a_match_and_unlabelled_class_is_undefined() -> None:
    gt = [[0, 10, 10, 30, 50]]
    pred = [[1, 0.9, 10, 10, 30, 50]]  # right box, wrong class
    tm, ul = _both([_image("a", gt, pred)])
    for result in (tm, ul):
        assert result["mAP50"] == pytest.approx(0.0, abs=1e-6)
        assert result["per_class"]["car"]["AP50"] is None  # no car in the ground truth


def test_images_without_boxes_and_repeated_records() -> None:
    empty = _image("e", [], [])
    single = _image("a", GT_A, _perfect(GT_A))
    tm, ul = _both([single, empty, single])  # a bootstrap resample may repeat an image
    assert tm["mAP50"] == pytest.approx(1.0, abs=1e-6)
    assert ul["mAP50"] == pytest.approx(1.0, abs=UL_TOL)
    tm_none = coco_map([empty], CLASSES)
    assert tm_none["mAP50"] is None


def test_max_det_limits_counted_detections() -> None:
    # 15 confident false positives rank above the true box: with max_det=12 the true box is cut off
    gt = [[0, 10, 10, 30, 50]]
    fps = [[0, 0.9 - 0.01 * i, 40 + 10 * i, 60, 45 + 10 * i, 70] for i in range(15)]
    records = [_image("a", gt, [*fps, [0, 0.5, 10, 10, 30, 50]], width=200, height=100)]
    with pytest.warns(UserWarning, match="detections"):
        assert coco_map(records, CLASSES, max_det=12)["mAP50"] == pytest.approx(0.0, abs=1e-6)
    # all 16 kept: the true box is found at rank 16, precision 1/16 at recall 1
    assert coco_map(records, CLASSES, max_det=300)["mAP50"] == pytest.approx(1 / 16, abs=1e-6)


def test_per_class_ap_matches_torchmetrics_per_class_evaluation() -> None:
    """coco_map reads each class's AP from the one evaluation's precision array; torchmetrics'
    class_metrics evaluates every class on its own. The two must give the same numbers."""
    pytest.importorskip("faster_coco_eval")
    import numpy as np
    import torch
    from torchmetrics.detection import MeanAveragePrecision

    rng = np.random.default_rng(5)
    classes = ["person", "car", "bicycle"]
    records = []
    for i in range(12):
        gt, pred = [], []
        for _ in range(rng.integers(0, 4)):
            x, y = rng.uniform(0, 60, 2)
            w, h = rng.uniform(8, 35, 2)
            c = int(rng.integers(0, 3))
            gt.append([c, x, y, x + w, y + h])
            if rng.random() < 0.8:  # found, with a jittered box and a random score
                box = np.array([x, y, x + w, y + h]) + rng.normal(0, 3, 4)
                pred.append([c, float(rng.random()), *box.tolist()])
        for _ in range(rng.integers(0, 3)):  # background false positives
            x, y = rng.uniform(0, 60, 2)
            pred.append([int(rng.integers(0, 3)), float(rng.random()), x, y, x + 20, y + 15])
        records.append(_image(f"im{i}", gt, pred))

    ours = coco_map(records, classes)
    metric = MeanAveragePrecision(
        box_format="xyxy", iou_type="bbox", max_detection_thresholds=[1, 10, 300],
        class_metrics=True, backend="faster_coco_eval",
    )  # fmt: skip

    def boxes(rows: list, first: int) -> torch.Tensor:
        return torch.tensor([r[first:] for r in rows], dtype=torch.float32).reshape(-1, 4)

    def labels(rows: list) -> torch.Tensor:
        return torch.tensor([r[0] for r in rows], dtype=torch.int64)

    metric.update(
        [
            {
                "boxes": boxes(rec["pred"], 2),
                "scores": torch.tensor([r[1] for r in rec["pred"]], dtype=torch.float32),
                "labels": labels(rec["pred"]),
            }
            for rec in records
        ],
        [{"boxes": boxes(rec["gt"], 1), "labels": labels(rec["gt"])} for rec in records],
    )
    reference = metric.compute()
    per_class = dict(
        zip(reference["classes"].tolist(), reference["map_per_class"].tolist(), strict=True)
    )
    assert len(per_class) == 3
    for c, name in enumerate(classes):
        assert ours["per_class"][name]["AP50_95"] == pytest.approx(per_class[c], abs=1e-6), name
    assert ours["mAP50_95"] == pytest.approx(float(reference["map"]), abs=1e-6)
