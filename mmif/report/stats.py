"""Statistics of the report: t-intervals over seeds, the paired bootstrap, rank correlation.

Everything here is pure numpy/scipy on arrays; the task-specific statistics (mAP50 from
predictions, mIoU from confusion counts) are in `mmif.report.significance`.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats as sps


@dataclass(frozen=True)
class SeedSummary:
    """mean, sample std (ddof 1) and t-interval of a score over n seeds (NaN where undefined)."""

    mean: float
    std: float
    ci_low: float
    ci_high: float
    n: int


def mean_ci(values: Sequence[float], level: float = 0.95) -> SeedSummary:
    """Mean +- std over seeds with a two-sided Student-t interval (n - 1 degrees of freedom).

    One seed gives the value with NaN std and interval (no spread can be estimated).
    """
    x = np.asarray([v for v in values if v is not None and np.isfinite(v)], dtype=np.float64)
    n = len(x)
    if n == 0:
        return SeedSummary(np.nan, np.nan, np.nan, np.nan, 0)
    mean = float(x.mean())
    if n == 1:
        return SeedSummary(mean, np.nan, np.nan, np.nan, 1)
    std = float(x.std(ddof=1))
    half = float(sps.t.ppf(0.5 + level / 2.0, n - 1)) * std / np.sqrt(n)
    return SeedSummary(mean, std, mean - half, mean + half, n)


def resample_counts(n_items: int, n_resamples: int, seed: int) -> np.ndarray:
    """(n_resamples, n_items) counts: how often each item is drawn in each bootstrap sample.

    Each sample draws n_items indices with replacement; the same seed gives the same samples,
    which is what makes the comparison paired (every method sees identical resampled sets).
    """
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, n_items, size=(n_resamples, n_items))
    offsets = (np.arange(n_resamples) * n_items)[:, None]
    return np.bincount((idx + offsets).ravel(), minlength=n_resamples * n_items).reshape(
        n_resamples, n_items
    )


def iou_from_confusion(confusion: np.ndarray) -> np.ndarray:
    """Per-class IoU from (..., C, C) counts (rows truth, columns prediction).

    NaN where a class has no truth pixel (so it is left out of mIoU), as the segmentation stage
    reports it (segmentation.evaluate): pixels wrongly predicted as such a class still count
    against their true class.
    """
    conf = np.asarray(confusion, dtype=np.float64)
    tp = np.diagonal(conf, axis1=-2, axis2=-1)
    truth = conf.sum(axis=-1)
    union = truth + conf.sum(axis=-2) - tp
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(truth > 0, tp / union, np.nan)


def nanmean_last(x: np.ndarray) -> np.ndarray:
    """Mean over the last axis ignoring NaN (NaN when all are NaN), without warnings."""
    valid = ~np.isnan(x)
    count = valid.sum(axis=-1)
    total = np.where(valid, x, 0.0).sum(axis=-1)
    return np.where(count > 0, total / np.maximum(count, 1), np.nan)


@dataclass(frozen=True)
class BootstrapComparison:
    """Method minus baseline on the full test set and its bootstrap distribution."""

    delta: float
    ci_low: float
    ci_high: float
    p_value: float
    n_resamples: int


def bootstrap_pvalue(deltas: np.ndarray) -> float:
    """Two-sided p-value of H0 "no difference" from bootstrap differences (interval inversion).

    p = 2 * min(share of resamples <= 0, share >= 0), each with the +1 correction of a Monte
    Carlo test, capped at 1: the smallest alpha for which the percentile interval of the
    difference still excludes 0.
    """
    d = np.asarray(deltas, dtype=np.float64)
    d = d[np.isfinite(d)]
    if len(d) == 0:
        return np.nan
    b = len(d)
    low = (1 + np.count_nonzero(d <= 0)) / (b + 1)
    high = (1 + np.count_nonzero(d >= 0)) / (b + 1)
    return float(min(1.0, 2.0 * min(low, high)))


def paired_bootstrap(
    method_full: Sequence[float],
    baseline_full: Sequence[float],
    method_boot: np.ndarray,
    baseline_boot: np.ndarray,
    level: float = 0.95,
) -> BootstrapComparison:
    """Compare a method with a baseline over seeds paired by seed number.

    method_full/baseline_full: (S,) statistic on the full test set for each shared seed;
    method_boot/baseline_boot: (S, B) the statistic on the same B resampled image sets.
    The seeds are pooled by averaging the per-seed differences, so the test asks whether the
    seed-averaged score differs; training randomness enters only through that average.
    """
    mf, bf = np.asarray(method_full, float), np.asarray(baseline_full, float)
    mb, bb = np.atleast_2d(method_boot).astype(float), np.atleast_2d(baseline_boot).astype(float)
    if mb.shape != bb.shape or mb.shape[0] != len(mf) or len(mf) != len(bf):
        raise ValueError(
            f"shape mismatch: method {mb.shape}/{mf.shape}, baseline {bb.shape}/{bf.shape}"
        )
    delta = float(np.mean(mf - bf))
    deltas = (mb - bb).mean(axis=0)
    finite = deltas[np.isfinite(deltas)]
    if len(finite) == 0:
        return BootstrapComparison(delta, np.nan, np.nan, np.nan, 0)
    lo, hi = np.quantile(finite, [0.5 - level / 2.0, 0.5 + level / 2.0])
    return BootstrapComparison(delta, float(lo), float(hi), bootstrap_pvalue(finite), len(finite))


def spearman(x: Sequence[float], y: Sequence[float]) -> tuple[float, float, int]:
    """Spearman's rho, its two-sided p-value and n over the finite pairs (NaN when n < 3 or a
    side is constant)."""
    a, b = np.asarray(x, float), np.asarray(y, float)
    ok = np.isfinite(a) & np.isfinite(b)
    a, b = a[ok], b[ok]
    n = int(len(a))
    if n < 3 or np.ptp(a) == 0 or np.ptp(b) == 0:
        return np.nan, np.nan, n
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = sps.spearmanr(a, b)
    return float(res.statistic), float(res.pvalue), n
