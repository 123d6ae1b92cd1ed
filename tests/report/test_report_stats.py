"""t-intervals, resampling, IoU from counts and rank correlation."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats as sps

from mmif.iou import iou_from_confusion
from report.stats import mean_ci, resample_counts, spearman


def test_mean_ci_is_the_t_interval():
    values = [0.50, 0.54, 0.47, 0.52]
    s = mean_ci(values, 0.95)
    lo, hi = sps.t.interval(0.95, len(values) - 1, loc=np.mean(values), scale=sps.sem(values))
    assert (s.mean, s.n) == (pytest.approx(np.mean(values)), 4)
    assert s.std == pytest.approx(np.std(values, ddof=1))
    assert (s.ci_low, s.ci_high) == (pytest.approx(lo), pytest.approx(hi))


def test_mean_ci_one_seed_has_no_spread_and_nan_is_dropped():
    s = mean_ci([0.4, float("nan")])
    assert s.mean == 0.4 and s.n == 1 and np.isnan(s.std) and np.isnan(s.ci_low)
    assert mean_ci([]).n == 0


def test_resample_counts_are_bootstrap_samples():
    w = resample_counts(7, 50, seed=3)
    assert w.shape == (50, 7)
    assert (w.sum(axis=1) == 7).all()  # each sample has n draws
    assert (w >= 0).all()
    np.testing.assert_array_equal(w, resample_counts(7, 50, seed=3))
    assert not np.array_equal(w, resample_counts(7, 50, seed=4))


def test_iou_from_confusion():
    conf = np.array([[8, 2, 0], [1, 4, 0], [0, 0, 0]])  # class 2 absent from truth and prediction
    iou = iou_from_confusion(conf)
    assert iou[0] == pytest.approx(8 / (10 + 9 - 8))
    assert iou[1] == pytest.approx(4 / (5 + 6 - 4))
    assert np.isnan(iou[2])
    # predicted but absent from the truth: undefined (left out of mIoU), the error still lowers class 0
    conf2 = np.array([[8, 0, 2], [0, 5, 0], [0, 0, 0]])
    iou2 = iou_from_confusion(conf2)
    assert np.isnan(iou2[2]) and iou2[0] == pytest.approx(0.8)
    batched = iou_from_confusion(np.stack([conf, conf]))
    np.testing.assert_allclose(batched[1], iou, equal_nan=True)


def test_spearman():
    rho, p, n = spearman([1, 2, 3, 4], [10, 20, 30, 45])
    assert rho == pytest.approx(1.0) and n == 4 and p < 0.05
    rho, _, _ = spearman([1, 2, 3, 4], [4, 3, 2, 1])
    assert rho == pytest.approx(-1.0)
    assert np.isnan(spearman([1, 2], [1, 2])[0])  # too few methods
    assert np.isnan(spearman([1, 1, 1], [1, 2, 3])[0])  # constant metric
    assert spearman([1, 2, float("nan"), 4], [1, 2, 3, 4])[2] == 3
