"""Differences between methods that include training variance: seeds and test images.

A task score (mAP50, mIoU, one class's AP on the night images, ...) of a method depends on two
random things a rerun of the study would change: the training seed (the task model's weights)
and the sample of test images. This module turns, for each method, the score of every seed on
the full test set and on B bootstrap resamples of the test images (the same B resamples for every
method and seed) into differences with intervals and p-values. Pure numpy/scipy on arrays; the
task-specific scoring lives in `report.significance`.

The variance of a difference of seed means has two parts, estimated separately:

- seeds: the spread over seeds of the full-test-set scores, with S - 1 degrees of freedom.
  *Paired* designs (`frozen`, `finetune`: every method is scored by the same task model of a
  seed, or starts from it) take the variance of the within-seed differences; *unpaired* ones
  (`retrain`: every method trains its own models, so seed k of one method has nothing in common
  with seed k of another) add the two methods' own seed variances (Welch).
- test images: the bootstrap variance of the difference of seed means when the test images are
  resampled (jointly for both methods, so the image-level pairing is kept).

Their sum is the squared standard error; Welch-Satterthwaite degrees of freedom combine the
parts, and the interval and the two-sided p-value come from Student's t. With the usual 3 seeds
this matters: a bootstrap over seeds draws from 10 distinct multisets, estimates the seed
variance with a factor (S - 1) / S = 2/3 and replaces t(2)'s wide tails by a normal shape, so
it calls differences significant far more often than alpha (`benchmarks/bench_calibration.py`
measures both). The sum counts the seed-image interaction twice (once in each part), which
errs on the safe side. One seed gives no estimate of the training variance: its interval covers
the test images only and it is never called significant.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats as sps


@dataclass(frozen=True)
class SeedScores:
    """One method's statistic per seed.

    seeds: (S,) seed numbers; full: (S,) value on the full test set; boot: (S, B) value on the B
    bootstrap resamples of the test images, row i for seeds[i], column j the same resample for
    every method (NaN where the statistic is undefined on a resample).
    """

    seeds: tuple[int, ...]
    full: np.ndarray
    boot: np.ndarray

    def __post_init__(self) -> None:
        full = np.asarray(self.full, dtype=np.float64).reshape(-1)
        boot = np.asarray(self.boot, dtype=np.float64)
        if boot.ndim == 1:
            boot = boot.reshape(len(full), -1) if len(full) else boot.reshape(0, -1)
        if len(self.seeds) != len(full) or boot.shape[0] != len(full):
            raise ValueError(
                f"SeedScores: {len(self.seeds)} seeds, {len(full)} full values and "
                f"{boot.shape[0]} bootstrap rows must agree"
            )
        object.__setattr__(self, "seeds", tuple(int(s) for s in self.seeds))
        object.__setattr__(self, "full", full)
        object.__setattr__(self, "boot", boot)

    @property
    def mean(self) -> float:
        finite = self.full[np.isfinite(self.full)]
        return float(finite.mean()) if finite.size else math.nan

    def select(self, seeds: Sequence[int]) -> SeedScores:
        """The rows of `seeds` (in that order)."""
        pos = {s: i for i, s in enumerate(self.seeds)}
        idx = [pos[s] for s in seeds]
        return SeedScores(tuple(seeds), self.full[idx], self.boot[idx])

    @classmethod
    def from_mapping(cls, full: Mapping[int, float], boot: Mapping[int, np.ndarray]) -> SeedScores:
        """From seed -> value and seed -> (B,) resampled values (seeds sorted)."""
        seeds = sorted(full)
        return cls(
            tuple(seeds),
            np.array([full[s] for s in seeds], dtype=np.float64),
            np.stack([np.asarray(boot[s], dtype=np.float64) for s in seeds])
            if seeds
            else np.zeros((0, 0)),
        )


@dataclass(frozen=True)
class Difference:
    """`a - b` of seed-mean scores with its interval, p-value and variance parts.

    se_seed, se_image: the two parts of the standard error (se**2 = se_seed**2 + se_image**2);
    df: Welch-Satterthwaite degrees of freedom; paired: within-seed differences were used;
    n_seeds: seeds of a and of b that entered; training_variance: False when one of the sides
    has a single seed (no seed spread can be estimated, never significant).
    """

    a_mean: float
    b_mean: float
    delta: float
    ci_low: float
    ci_high: float
    p_value: float
    se: float
    se_seed: float
    se_image: float
    df: float
    paired: bool
    n_seeds: tuple[int, int]
    n_resamples: int
    training_variance: bool

    def significant(self, alpha: float) -> bool:
        return bool(
            self.training_variance
            and np.isfinite(self.p_value)
            and self.p_value < alpha
            and self.delta != 0
        )


def _var(x: np.ndarray) -> float:
    x = x[np.isfinite(x)]
    return float(x.var(ddof=1)) if len(x) > 1 else math.nan


def _satterthwaite(parts: Sequence[tuple[float, float]]) -> float:
    """Degrees of freedom of a sum of variance estimates [(v_k, df_k)] (df_k = inf: known)."""
    total = sum(v for v, _ in parts)
    denom = sum(v * v / d for v, d in parts if v > 0 and np.isfinite(d) and d > 0)
    if total <= 0:
        return math.inf
    return math.inf if denom == 0 else total * total / denom


def difference(
    a: SeedScores,
    b: SeedScores,
    paired: bool,
    level: float = 0.95,
    n_images: int | None = None,
) -> Difference:
    """Compare method `a` with method `b` (delta = mean over seeds of a minus that of b).

    paired: the seeds are shared task models (frozen / finetune). Only the seeds both sides have
    enter then; with none in common the comparison falls back to unpaired. Unpaired (retrain):
    every seed of either side enters.
    n_images: test images behind the bootstrap (degrees of freedom of the image part; None
    treats that part as known).
    Raises ValueError when the two sides' bootstrap resamples differ in number.
    """
    if a.boot.shape[1] != b.boot.shape[1]:
        raise ValueError(
            f"difference: {a.boot.shape[1]} and {b.boot.shape[1]} bootstrap resamples; "
            "both sides must be scored on the same resampled test sets"
        )
    shared = [s for s in a.seeds if s in set(b.seeds)]
    if paired and shared:
        a, b = a.select(shared), b.select(shared)
    else:
        paired = False
    ok_a, ok_b = np.isfinite(a.full), np.isfinite(b.full)
    if paired:
        ok_a = ok_b = ok_a & ok_b
    fa, fb = a.full[ok_a], b.full[ok_b]
    n_a, n_b = len(fa), len(fb)
    if n_a == 0 or n_b == 0:
        nan = math.nan
        return Difference(
            nan, nan, nan, nan, nan, nan, nan, nan, nan, nan, paired, (n_a, n_b), 0, False
        )
    a_mean, b_mean = float(fa.mean()), float(fb.mean())
    delta = a_mean - b_mean

    # seeds
    parts: list[tuple[float, float]] = []
    training = n_a > 1 and n_b > 1
    if paired:
        v = _var(fa - fb) / n_a if n_a > 1 else 0.0
        parts.append((v, n_a - 1 if n_a > 1 else math.inf))
    else:
        for f, n in ((fa, n_a), (fb, n_b)):
            v = _var(f) / n if n > 1 else 0.0
            parts.append((v, n - 1 if n > 1 else math.inf))
    var_seed = sum(v for v, _ in parts)

    # test images: the same resamples for both sides, seed means per resample
    boot_delta = a.boot[ok_a].mean(axis=0) - b.boot[ok_b].mean(axis=0)
    boot_delta = boot_delta[np.isfinite(boot_delta)]
    n_res = len(boot_delta)
    var_image = _var(boot_delta) if n_res > 1 else 0.0
    if not np.isfinite(var_image):
        var_image = 0.0
    parts.append((var_image, (n_images - 1) if n_images and n_images > 1 else math.inf))

    var = var_seed + var_image
    se = math.sqrt(var)
    df = _satterthwaite(parts)
    if se > 0:
        q = float(sps.t.ppf(0.5 + level / 2.0, df))
        half = q * se
        p = float(2.0 * sps.t.sf(abs(delta) / se, df))
    else:
        half = 0.0
        p = 1.0 if delta == 0 else 0.0
    return Difference(
        a_mean=a_mean,
        b_mean=b_mean,
        delta=delta,
        ci_low=delta - half,
        ci_high=delta + half,
        p_value=min(1.0, p),
        se=se,
        se_seed=math.sqrt(var_seed),
        se_image=math.sqrt(var_image),
        df=df,
        paired=paired,
        n_seeds=(n_a, n_b),
        n_resamples=n_res,
        training_variance=training,
    )


@dataclass(frozen=True)
class BestSet:
    """The method with the highest seed mean and how every other method compares with it.

    against_best: method -> Difference(best - method); indistinguishable: the best and every
    method whose difference to it is not significant at alpha (or not testable), best first.
    """

    best: str
    against_best: dict[str, Difference]
    indistinguishable: list[str]


def best_set(
    scores: Mapping[str, SeedScores],
    paired: bool,
    alpha: float = 0.05,
    level: float = 0.95,
    n_images: int | None = None,
    higher_is_better: bool = True,
) -> BestSet | None:
    """Which methods cannot be told apart from the best one (None without any finite score).

    The best is the method with the highest (or lowest) seed mean; each other method is compared
    with it by `difference` at two-sided level alpha, one comparison per method, no multiplicity
    correction (a correction would only make the set larger).
    """
    means = {m: s.mean for m, s in scores.items() if np.isfinite(s.mean)}
    if not means:
        return None
    sign = 1.0 if higher_is_better else -1.0
    best = max(means, key=lambda m: sign * means[m])
    against: dict[str, Difference] = {}
    same = [best]
    for m in means:
        if m == best:
            continue
        d = difference(scores[best], scores[m], paired, level, n_images)
        against[m] = d
        if not d.significant(alpha):
            same.append(m)
    return BestSet(best, against, same)


def sd_interval(sd: float, n: int, level: float = 0.95) -> tuple[float, float]:
    """Two-sided `level` interval of the true std behind a sample std `sd` of `n` normal draws.

    (n - 1) s^2 / sigma^2 follows chi-square with n - 1 degrees of freedom, so sigma lies in
    [s sqrt((n - 1) / q_hi), s sqrt((n - 1) / q_lo)] with q the chi-square quantiles at
    (1 + level) / 2 and (1 - level) / 2. With 3 seeds the interval spans a factor of 12
    (0.52 s to 6.3 s at 95 %): one study's seed std cannot show a noise budget met or missed
    unless it is far from the budget. (NaN, NaN) below two draws or for a non-finite sd.
    """
    if n < 2 or not math.isfinite(sd) or not 0.0 < level < 1.0:
        return math.nan, math.nan
    df = n - 1
    q_hi = float(sps.chi2.ppf((1.0 + level) / 2.0, df))
    q_lo = float(sps.chi2.ppf((1.0 - level) / 2.0, df))
    return sd * math.sqrt(df / q_hi), sd * math.sqrt(df / q_lo)


def seed_std_of_differences(a: SeedScores, b: SeedScores) -> float:
    """Sample std over the shared seeds of a's minus b's full-set value (NaN below two seeds).

    Under frozen / finetune this is the training noise of a comparison; the budget of the
    default study bounds it.
    """
    shared = [s for s in a.seeds if s in set(b.seeds)]
    if len(shared) < 2:
        return math.nan
    d = a.select(shared).full - b.select(shared).full
    d = d[np.isfinite(d)]
    return float(d.std(ddof=1)) if len(d) > 1 else math.nan
