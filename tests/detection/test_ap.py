"""Own COCO-style AP50 against torchmetrics' MeanAveragePrecision and against its own definition."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from detection.ap import (
    ImageDetections,
    average_precision,
    box_iou,
    match_detections,
    mean_average_precision,
)


def random_images(rng: np.random.Generator, n_images: int, n_classes: int) -> list[ImageDetections]:
    images = []
    for _ in range(n_images):
        gt = []
        for _ in range(rng.integers(0, 5)):
            x, y = rng.uniform(0, 80, 2)
            w, h = rng.uniform(5, 30, 2)
            gt.append([rng.integers(0, n_classes), x, y, x + w, y + h])
        pred = []
        for g in gt:
            if rng.random() < 0.8:  # a jittered hit, sometimes with the wrong class
                cls = g[0] if rng.random() < 0.85 else rng.integers(0, n_classes)
                pred.append([cls, rng.random(), *(np.asarray(g[1:]) + rng.normal(0, 3, 4))])
        for _ in range(rng.integers(0, 4)):  # background false positives
            x, y = rng.uniform(0, 80, 2)
            w, h = rng.uniform(5, 30, 2)
            pred.append([rng.integers(0, n_classes), rng.random(), x, y, x + w, y + h])
        images.append(ImageDetections.from_lists(gt, pred))
    return images


def torchmetrics_ap50(images: list[ImageDetections]) -> dict:
    from torchmetrics.detection import MeanAveragePrecision

    # COCO's recall points in float64: torchmetrics' default list comes from a float32 linspace,
    # whose 0.6 is 0.6000000238, so a recall of exactly 3/5 would fall below that point there.
    metric = MeanAveragePrecision(
        iou_type="bbox",
        iou_thresholds=[0.5],
        rec_thresholds=np.linspace(0.0, 1.0, 101).tolist(),
        class_metrics=True,
        backend="faster_coco_eval",
    )
    preds = [
        {
            "boxes": torch.tensor(im.pred[:, 2:6], dtype=torch.float64),
            "scores": torch.tensor(im.pred[:, 1], dtype=torch.float64),
            "labels": torch.tensor(im.pred[:, 0], dtype=torch.long),
        }
        for im in images
    ]
    targets = [
        {
            "boxes": torch.tensor(im.gt[:, 1:5], dtype=torch.float64),
            "labels": torch.tensor(im.gt[:, 0], dtype=torch.long),
        }
        for im in images
    ]
    metric.update(preds, targets)
    return metric.compute()


@pytest.mark.parametrize(("seed", "ties"), [(0, False), (1, False), (2, True), (3, True)])
def test_ap50_matches_torchmetrics(seed, ties):
    pytest.importorskip("faster_coco_eval")
    images = random_images(np.random.default_rng(seed), n_images=10, n_classes=3)
    if ties:  # scores on a 0.1 grid: many equal scores, ranked as COCO does (stable, image order)
        images = [
            ImageDetections(
                im.gt, np.c_[im.pred[:, :1], np.round(im.pred[:, 1:2], 1), im.pred[:, 2:]]
            )
            for im in images
        ]
    ref = torchmetrics_ap50(images)
    matched = match_detections(images, n_classes=3)
    ours = average_precision(matched)
    for cls, ap in zip(ref["classes"].tolist(), ref["map_per_class"].tolist(), strict=True):
        assert ours[cls] == pytest.approx(ap, abs=1e-6)
    assert float(mean_average_precision(matched)) == pytest.approx(float(ref["map"]), abs=1e-6)


def test_perfect_and_empty_predictions():
    gt = [[0, 0, 0, 10, 10], [1, 20, 20, 30, 35]]
    perfect = ImageDetections.from_lists(gt, [[c, 0.9, *b] for c, *b in gt])
    assert average_precision(match_detections([perfect], 2)) == pytest.approx([1.0, 1.0])
    nothing = ImageDetections.from_lists(gt, [])
    assert average_precision(match_detections([nothing], 2)).tolist() == [0.0, 0.0]


def test_class_without_ground_truth_is_left_out_of_the_mean():
    im = ImageDetections.from_lists(
        [[0, 0, 0, 10, 10]], [[0, 0.9, 0, 0, 10, 10], [1, 0.8, 5, 5, 9, 9]]
    )
    ap = average_precision(match_detections([im], 2))
    assert ap[0] == pytest.approx(1.0) and np.isnan(ap[1])
    assert float(mean_average_precision(match_detections([im], 2))) == pytest.approx(1.0)


def test_iou_below_half_is_a_false_positive():
    # prediction covers half of the box's area: IoU 0.5 counts, a little less does not
    gt = [[0, 0, 0, 10, 10]]
    half = ImageDetections.from_lists(gt, [[0, 0.9, 0, 0, 10, 5]])
    less = ImageDetections.from_lists(gt, [[0, 0.9, 0, 0, 10, 4.9]])
    assert average_precision(match_detections([half], 1))[0] == pytest.approx(1.0)
    assert average_precision(match_detections([less], 1))[0] == 0.0
    assert box_iou(np.array([[0, 0, 10, 5.0]]), np.array([[0, 0, 10, 10.0]]))[
        0, 0
    ] == pytest.approx(0.5)


def test_image_weights_equal_duplicated_images():
    images = random_images(np.random.default_rng(5), n_images=6, n_classes=2)
    counts = np.array([0, 2, 1, 3, 0, 1])
    duplicated = [im for im, k in zip(images, counts, strict=True) for _ in range(k)]
    weighted = average_precision(match_detections(images, 2), counts)
    explicit = average_precision(match_detections(duplicated, 2))
    np.testing.assert_allclose(weighted, explicit, atol=1e-12)


def test_rows_of_weights_are_independent_sets():
    images = random_images(np.random.default_rng(7), n_images=8, n_classes=2)
    matched = match_detections(images, 2)
    w = np.random.default_rng(0).integers(0, 3, size=(5, 8))
    batch = mean_average_precision(matched, w)
    single = np.array([mean_average_precision(matched, row) for row in w])
    np.testing.assert_allclose(batch, single, equal_nan=True)


def test_class_ids_out_of_range_are_rejected():
    with pytest.raises(ValueError, match="outside"):
        match_detections([ImageDetections.from_lists([[3, 0, 0, 1, 1]], [])], n_classes=2)


def test_greedy_match_skips_only_predictions_that_cannot_match():
    from detection.ap import _greedy_match

    def naive(iou, t):  # every prediction in turn, as COCO does
        free, out = np.ones(iou.shape[1], bool), np.zeros(iou.shape[0], bool)
        for i in range(iou.shape[0]):
            cand = np.where(free, iou[i], -1.0)
            j = int(np.argmax(cand))
            if cand[j] >= t:
                free[j], out[i] = False, True
        return out

    rng = np.random.default_rng(0)
    for _ in range(200):
        iou = rng.uniform(0, 1, (rng.integers(0, 30), rng.integers(1, 6))) ** 3
        iou[rng.random(iou.shape) < 0.3] = -1.0  # another class
        for t in (0.5, 0.75):
            assert np.array_equal(_greedy_match(iou, t), naive(iou, t))


@pytest.mark.parametrize("n_gt", [10, 20, 40, 100, 7])
def test_recall_point_lookup_equals_counting_every_position(n_gt):
    """_curve_ap finds each recall point's position by a binary search per row; that must equal
    counting the positions whose recall is below the point, also where the recall lands exactly
    on a point (n_gt 10, 20, 100) and where zero-weight images repeat a value."""
    from detection.ap import RECALL_POINTS, _curve_ap

    rng = np.random.default_rng(n_gt)
    rows, n = 50, n_gt
    weights = rng.integers(0, 3, size=(rows, n)).astype(np.float64)  # zeros repeat values
    cum_tp = np.cumsum(weights, axis=1)
    cum_fp = np.cumsum(rng.integers(0, 4, size=(rows, n)), axis=1).astype(np.float64)
    totals = cum_tp[:, -1] + rng.integers(0, 3, size=rows)  # some ground truth never found
    totals[0] = 0.0  # a set without ground truth
    got = _curve_ap(cum_tp, cum_fp, totals)

    expected = np.full(rows, np.nan)
    for r in np.flatnonzero(totals > 0):
        recall = cum_tp[r] / totals[r]
        precision = cum_tp[r] / (cum_tp[r] + cum_fp[r] + np.spacing(1))
        precision = np.maximum.accumulate(precision[::-1])[::-1]
        idx = np.array([(recall < p).sum() for p in RECALL_POINTS])
        expected[r] = np.where(idx < n, precision[np.minimum(idx, n - 1)], 0.0).mean()
    assert np.isnan(got[0])
    assert np.any(np.isin(cum_tp / np.maximum(totals, 1)[:, None], RECALL_POINTS))
    np.testing.assert_array_equal(got, expected)
