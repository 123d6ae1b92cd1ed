"""Honest precision: every number of the report rounded to what its interval supports, and
every interval kept inside its metric's range.

One rule for every display table (report.md, report.html, tables/*.md), the results card and
`scripts/print_summary.py`; the CSV files keep full precision:

- the interval's half-width is rounded to two significant digits, and the estimate, the ends
  of the interval and any spread printed with it (a std) to the same decimal place:
  0.2128 with the interval [-0.1555, 0.5812] (half-width 0.37) prints as 0.21 [0.00, 0.58];
- a value without an interval (one seed, a single number) prints with three significant
  digits, and the table says so;
- an interval of a bounded score (mAP, AP, IoU, accuracy, precision, recall; fusion metrics
  with a fixed range such as Qabf, SSIM, CC) is clipped to that range, and an interval of a
  difference of two such scores to the range of a difference ([-1, 1] for scores in [0, 1]).
  The clip changes only the printed ends, never the estimate, the test or the p-value: the
  Student-t interval of a mean of 3 seeds can reach below 0 when one seed is near 0, and a
  printed "mAP in [-0.16, 0.58]" claims something impossible. A transformed scale (logit)
  would instead change the estimated quantity (the back-transformed mean of logits is not the
  mean score) and breaks on scores of exactly 0 or 1, which per-class AP often is.

Everything here is pure: numbers in, text (or numbers) out.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from mmif.metric_catalog import RANGES

#: significant digits kept of an interval's half-width
SIGNIFICANT_DIGITS = 2
#: significant digits of a value that has no interval
FALLBACK_DIGITS = 3
#: a half-width below this share of the estimate is float rounding, not an interval (the
#: t-interval of identical values comes out as 1e-17, not 0)
NEGLIGIBLE = 1e-9
UNIT = (0.0, 1.0)

#: task scores that are not proportions (everything else a task stage reports lies in [0, 1])
UNBOUNDED_TASK_SCORES = frozenset({"loss", "box_loss", "cls_loss", "dfl_loss", "train_loss"})

BOUNDS_NOTE = (
    "Numbers are rounded to what their interval supports: the interval's half-width to two "
    "significant digits, the estimate and the interval's ends to the same decimal place; values "
    "without an interval (one seed) to three significant digits; the CSV files keep full "
    "precision. Intervals of bounded scores (mAP, AP, IoU, pixel accuracy; fusion metrics with a "
    "fixed range such as Qabf, SSIM, CC, MS_SSIM, FMI) are clipped to the score's range, those of "
    "differences of scores in [0, 1] to [-1, 1]; the clip changes the printed ends only, never "
    "the estimate, the test or the p-value (report/precision.py)."
)


def bounds_of(name: str, kind: str = "task") -> tuple[float, float] | None:
    """The range of a score: task scores and per-class values in [0, 1], fusion metrics from
    `mmif.metric_catalog.RANGES` (None: unbounded or unknown)."""
    if kind == "fusion":
        return RANGES.get(name)
    return None if name in UNBOUNDED_TASK_SCORES or name.endswith("_loss") else UNIT


def difference_bounds(bounds: tuple[float, float] | None) -> tuple[float, float] | None:
    """Range of a difference of two scores that each lie in `bounds`."""
    if bounds is None:
        return None
    width = bounds[1] - bounds[0]
    return (-width, width)


def _finite(x: object) -> bool:
    try:
        return x is not None and math.isfinite(float(x))  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return False


def decimals(half_width: float, digits: int = SIGNIFICANT_DIGITS) -> int | None:
    """Decimal place that keeps `digits` significant digits of `half_width` (negative: tens,
    hundreds, ...); None without a positive finite half-width.

    0.37 -> 2, 0.0093 -> 4, 3.7 -> 1, 150 -> -1; 0.0996 -> 2 (it rounds to 0.10, not 0.100).
    """
    if not _finite(half_width) or float(half_width) <= 0:
        return None
    h = float(half_width)
    places = digits - 1 - math.floor(math.log10(h))
    if abs(round(h, places)) >= 10 ** (digits - places):  # rounding added a digit: 0.0996 -> 0.10
        places -= 1
    return places


def at_places(value: float, places: int) -> str:
    """`value` rounded to `places` decimals (negative: to tens, ...), no "-0"."""
    if not _finite(value):
        return "n/a"
    v = round(float(value), places)
    text = f"{v:.{max(places, 0)}f}"
    return text[1:] if text.startswith("-") and float(text) == 0 else text


def significant(value: float, digits: int = FALLBACK_DIGITS) -> str:
    """`value` with `digits` significant digits (the text of a value without an interval)."""
    if not _finite(value):
        return "n/a"
    v = float(value)
    if v == 0:
        return "0"
    places = digits - 1 - math.floor(math.log10(abs(v)))
    if abs(round(v, places)) >= 10 ** (digits - places):
        places -= 1
    if places <= 0 or abs(v) >= 1e6:
        return at_places(v, places) if abs(v) < 1e6 else f"{v:.{digits}g}"
    return at_places(v, places)


def clip(low, high, bounds: tuple[float, float] | None):
    """(low, high) clipped to `bounds` (numbers or arrays; NaN stays NaN), and whether any end
    moved."""
    if bounds is None:
        return low, high, False
    lo_in, hi_in = np.asarray(low, dtype=np.float64), np.asarray(high, dtype=np.float64)
    lo, hi = np.fmax(lo_in, bounds[0]), np.fmin(hi_in, bounds[1])
    lo = np.where(np.isnan(lo_in), np.nan, lo)
    hi = np.where(np.isnan(hi_in), np.nan, hi)
    moved = bool(np.any(lo_in < bounds[0]) or np.any(hi_in > bounds[1]))
    if lo.ndim == 0:
        return float(lo), float(hi), moved
    return lo, hi, moved


@dataclass(frozen=True)
class Rounded:
    """An estimate with its interval as text at the precision the interval supports.

    places: the decimal place (None: no interval, `estimate` has 3 significant digits);
    clipped: an end of the interval was moved into the score's range; half: the half-width
    at the same place; exponent: tiny values (six decimals or more) are written as mantissas
    times 10**exponent, "(7.7 ± 2.3)e-7", instead of "0.00000077 ± 0.00000023".
    Inside an interval and after "±" a no-break space keeps the interval on one line.
    """

    estimate: str
    low: str
    high: str
    places: int | None
    clipped: bool
    half: str = ""
    exponent: int = 0

    def _scaled(self, core: str) -> str:
        return f"({core.replace(' ', NBSP)})e{self.exponent}" if self.exponent else core

    def value(self) -> str:
        """The estimate alone at its precision ("0.21", "7.7e-7")."""
        return f"{self.estimate}e{self.exponent}" if self.exponent else self.estimate

    def text(self, spread: str | None = None) -> str:
        """ "0.21 [0.00, 0.58]", with a spread "0.21 ± 0.15 [0.00, 0.58]"; the estimate alone
        without an interval."""
        if self.places is None:
            return self.estimate
        pm = f" ±{NBSP}{spread}" if spread else ""
        return self._scaled(f"{self.estimate}{pm} [{self.low},{NBSP}{self.high}]")

    def pm(self) -> str:
        """ "6.831 ± 0.052": the symmetric form (the estimate alone without an interval)."""
        if self.places is None:
            return self.estimate
        return self._scaled(f"{self.estimate} ±{NBSP}{self.half}")


#: no-break space: inside intervals and after "±" (an interval never breaks across lines)
NBSP = "\u00a0"
#: from this decimal place on, values below 1e-3 are written with an exponent
SCI_PLACES = 6


def rounded(
    estimate: float,
    low: float,
    high: float,
    bounds: tuple[float, float] | None = None,
    digits: int = SIGNIFICANT_DIGITS,
) -> Rounded:
    """Round an estimate and its interval by the interval's half-width (before clipping: the
    precision is what the statistic supports) and clip the ends to `bounds`."""
    half = (float(high) - float(low)) / 2.0 if _finite(low) and _finite(high) else math.nan
    if _finite(half) and _finite(estimate) and half <= NEGLIGIBLE * max(1.0, abs(float(estimate))):
        half = 0.0
    places = decimals(half, digits)
    if places is None:
        return Rounded(significant(estimate), "n/a", "n/a", None, False)
    if bounds is not None and not bounds[0] <= float(estimate) <= bounds[1]:
        bounds = None  # an estimate outside the assumed range: the range is wrong, not the data
    lo, hi, clipped = clip(float(low), float(high), bounds)
    values = [float(estimate), lo, hi, half]
    exponent = 0
    if places >= SCI_PLACES and max(abs(v) for v in values) < 1e-3:
        exponent = -(places - digits + 1)
        values = [v * 10.0**-exponent for v in values]
        places = digits - 1
    est_t, lo_t, hi_t, half_t = (at_places(v, places) for v in values)
    return Rounded(est_t, lo_t, hi_t, places, clipped, half_t, exponent)


def interval_text(
    estimate: float,
    low: float,
    high: float,
    bounds: tuple[float, float] | None = None,
    spread: float | None = None,
) -> str:
    """Table cell "estimate [low, high]" (or "estimate ± spread [low, high]" with a std)."""
    r = rounded(estimate, low, high, bounds)
    pm = None
    if r.places is not None and _finite(spread):
        pm = at_places(float(spread) * 10.0**-r.exponent, r.places)
    return r.text(pm)


def pm_text(estimate: float, half_width: float, bounds: tuple[float, float] | None = None) -> str:
    """Compact cell "estimate ± half": the symmetric interval, written as "estimate [low, high]"
    when it would leave the score's range."""
    if not _finite(half_width):
        return significant(estimate)
    low, high = float(estimate) - float(half_width), float(estimate) + float(half_width)
    r = rounded(estimate, low, high, bounds)
    return r.text() if r.clipped else r.pm()


def value_at(value: float, places: int | None) -> str:
    """A value printed at a given decimal place (that of a related interval), or with 3
    significant digits when there is none."""
    return significant(value) if places is None else at_places(value, places)


def p_equals(p: float) -> str:
    """ "p = 0.046", "p < 0.001" (for sentences)."""
    text = p_text(p)
    return f"p {text[0]} {text[1:]}" if text.startswith("<") else f"p = {text}"


def p_text(p: float) -> str:
    """A p-value with two significant digits; "<0.001" below that."""
    if not _finite(p):
        return "n/a"
    p = float(p)
    if p < 0.001:
        return "<0.001"
    return significant(p, 2)
