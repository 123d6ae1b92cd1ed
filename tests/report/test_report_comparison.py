"""Differences of seed means with seed and image variance (report.comparison)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats as sps

from report.comparison import (
    SeedScores,
    best_set,
    difference,
    sd_interval,
    seed_std_of_differences,
)


def _scores(full, boot=None, seeds=None) -> SeedScores:
    full = np.asarray(full, dtype=float)
    if boot is None:  # no image variance: every resample equals the full-set value
        boot = np.repeat(full[:, None], 50, axis=1)
    return SeedScores(tuple(seeds or range(len(full))), full, np.asarray(boot, dtype=float))


def test_paired_without_image_variance_is_the_paired_t_test():
    a, b = [0.61, 0.66, 0.58], [0.50, 0.57, 0.49]
    d = difference(_scores(a), _scores(b), paired=True)
    ref = sps.ttest_rel(a, b)
    assert d.paired and d.delta == pytest.approx(np.mean(a) - np.mean(b))
    assert d.p_value == pytest.approx(ref.pvalue)
    assert d.df == pytest.approx(2)
    lo, hi = sps.t.interval(0.95, 2, loc=d.delta, scale=np.std(np.subtract(a, b), ddof=1) / 3**0.5)
    assert (d.ci_low, d.ci_high) == (pytest.approx(lo), pytest.approx(hi))
    assert d.se_image == 0 and d.significant(0.05) == (ref.pvalue < 0.05)


def test_unpaired_without_image_variance_is_welchs_t_test():
    a, b = [0.61, 0.70, 0.52], [0.50, 0.51, 0.49, 0.52]
    d = difference(_scores(a), _scores(b, seeds=[5, 6, 7, 8]), paired=False)
    ref = sps.ttest_ind(a, b, equal_var=False)
    assert not d.paired and d.n_seeds == (3, 4)
    assert d.p_value == pytest.approx(ref.pvalue)
    assert d.df == pytest.approx(ref.df)


def test_shared_seed_effect_cancels_only_when_paired():
    # a large seed effect common to both methods, a constant gap of 0.05
    seed_effect = np.array([0.0, 0.2, -0.15])
    a, b = 0.55 + seed_effect, 0.50 + seed_effect + np.array([0.002, -0.001, 0.0])
    paired = difference(_scores(a), _scores(b), paired=True)
    unpaired = difference(_scores(a), _scores(b), paired=False)
    assert paired.significant(0.05) and paired.se_seed < 0.01
    assert not unpaired.significant(0.05) and unpaired.se_seed > 0.1


def test_image_variance_adds_to_the_seed_variance():
    rng = np.random.default_rng(0)
    image_noise = rng.normal(0, 0.03, 400)  # shared resamples: the difference moves with them
    a_full, b_full = np.array([0.60, 0.62, 0.61]), np.array([0.55, 0.56, 0.54])
    a_boot = a_full[:, None] + image_noise + rng.normal(0, 0.01, (3, 400))
    b_boot = b_full[:, None] + rng.normal(0, 0.01, (3, 400))
    d = difference(_scores(a_full, a_boot), _scores(b_full, b_boot), paired=True, n_images=32)
    within = a_full - b_full
    expected_seed = np.var(within, ddof=1) / 3
    expected_image = np.var(a_boot.mean(0) - b_boot.mean(0), ddof=1)
    assert d.se_seed == pytest.approx(math.sqrt(expected_seed))
    assert d.se_image == pytest.approx(math.sqrt(expected_image))
    assert d.se == pytest.approx(math.sqrt(expected_seed + expected_image))
    assert 2 < d.df <= 2 + 31  # Satterthwaite: between the smallest part and their sum


def test_identical_runs_and_one_seed():
    a = _scores([0.5, 0.6, 0.7], np.random.default_rng(1).random((3, 40)))
    d = difference(a, a, paired=True)
    assert (d.delta, d.p_value, d.ci_low, d.ci_high) == (0.0, 1.0, 0.0, 0.0)
    one = difference(_scores([0.9]), _scores([0.1]), paired=True)
    assert not one.training_variance and not one.significant(0.05)


def test_nan_seeds_are_left_out_and_resample_counts_must_agree():
    a = _scores([0.6, np.nan, 0.62, 0.61])
    b = _scores([0.5, 0.5, 0.52, 0.49])
    d = difference(a, b, paired=True)
    assert d.n_seeds == (3, 3)
    with pytest.raises(ValueError, match="resamples"):
        difference(_scores([0.1, 0.2], np.zeros((2, 10))), _scores([0.1, 0.2]), paired=True)


def test_paired_uses_the_shared_seeds_and_falls_back_without_any():
    a = _scores([0.6, 0.7, 0.65], seeds=[0, 1, 2])
    b = _scores([0.5, 0.55], seeds=[1, 2])
    assert difference(a, b, paired=True).n_seeds == (2, 2)
    c = _scores([0.5, 0.55], seeds=[7, 8])
    d = difference(a, c, paired=True)
    assert not d.paired and d.n_seeds == (3, 2)


def test_best_set_and_seed_std():
    scores = {
        "a": _scores([0.70, 0.72, 0.71]),
        "b": _scores([0.69, 0.73, 0.70]),
        "c": _scores([0.40, 0.42, 0.41]),
    }
    result = best_set(scores, paired=True)
    assert result.best == "a"
    assert result.indistinguishable == ["a", "b"]
    assert result.against_best["c"].delta == pytest.approx(0.30)
    assert best_set({"x": _scores([np.nan])}, paired=True) is None
    assert seed_std_of_differences(scores["a"], scores["c"]) == pytest.approx(0.0, abs=1e-12)
    assert seed_std_of_differences(scores["a"], scores["b"]) == pytest.approx(
        np.std([0.01, -0.01, 0.01], ddof=1)
    )
    assert math.isnan(seed_std_of_differences(_scores([0.1]), _scores([0.2])))


def test_sd_interval_covers_the_true_std_at_its_level():
    # 3 seeds: the chi-square interval spans 0.52 s to 6.3 s
    lo, hi = sd_interval(1.0, 3)
    assert lo == pytest.approx(math.sqrt(2 / sps.chi2.ppf(0.975, 2)))
    assert hi == pytest.approx(math.sqrt(2 / sps.chi2.ppf(0.025, 2)))
    assert 0.5 < lo < 0.55 and 6.0 < hi < 6.5
    # coverage over simulated studies of 3 and 6 seeds with a known std
    rng = np.random.default_rng(12)
    for n in (3, 6):
        draws = rng.normal(0.0, 0.02, size=(4000, n))
        sds = draws.std(axis=1, ddof=1)
        bounds = np.array([sd_interval(float(s), n) for s in sds])
        covered = np.mean((bounds[:, 0] <= 0.02) & (0.02 <= bounds[:, 1]))
        assert 0.93 <= covered <= 0.97, (n, covered)
    assert all(math.isnan(v) for v in sd_interval(0.1, 1))
    assert all(math.isnan(v) for v in sd_interval(math.nan, 3))
