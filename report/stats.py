"""Statistics of the report: t-intervals over seeds, bootstrap resampling, rank correlation.

Everything here is pure numpy/scipy on arrays; differences between methods with seed and image
variance are in `report.comparison`, the task-specific statistics (AP from predictions,
IoU from confusion counts) in `report.significance`.
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


def nanmean_last(x: np.ndarray) -> np.ndarray:
    """Mean over the last axis ignoring NaN (NaN when all are NaN), without warnings."""
    valid = ~np.isnan(x)
    count = valid.sum(axis=-1)
    total = np.where(valid, x, 0.0).sum(axis=-1)
    return np.where(count > 0, total / np.maximum(count, 1), np.nan)


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


def spearman_interval(rho: float, n: int, level: float = 0.95) -> tuple[float, float]:
    """Confidence interval of Spearman's rho over n items (NaN when n < 4, rho is undefined or
    exactly +-1).

    Fisher's z = atanh(rho) is about normal with variance (1 + rho^2 / 2) / (n - 3) for a rank
    correlation (Bonett and Wright 2000, Psychometrika 65: 23-28; Pearson's 1 / (n - 3) is too
    small for Spearman's rho); the interval is back-transformed with tanh, so it stays inside
    [-1, 1]. A bootstrap over the methods is no alternative at the report's usual 6 methods: 462
    distinct resamples, many with ties or a constant side, and a percentile interval that
    undercovers at small n. With fewer than about 10 methods the interval is approximate and
    wide; the report says so.
    """
    if not np.isfinite(rho) or n < 4 or abs(rho) >= 1.0:
        return np.nan, np.nan  # |rho| = 1: z is infinite, the approximation says nothing
    r = float(rho)
    se = np.sqrt((1.0 + r * r / 2.0) / (n - 3))
    q = float(sps.norm.ppf(0.5 + level / 2.0))
    z = np.arctanh(r)
    return float(np.tanh(z - q * se)), float(np.tanh(z + q * se))
