"""The precision rule (report.precision) and Spearman's interval (report.stats)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats as sps

from report import precision
from report.precision import (
    UNIT,
    bounds_of,
    clip,
    decimals,
    difference_bounds,
    p_equals,
    p_text,
    rounded,
    significant,
    value_at,
)
from report.stats import spearman, spearman_interval


def interval_text(*args, **kwargs) -> str:
    """The module's text with plain spaces for the no-break spaces inside intervals."""
    return precision.interval_text(*args, **kwargs).replace("\xa0", " ")


def pm_text(*args, **kwargs) -> str:
    return precision.pm_text(*args, **kwargs).replace("\xa0", " ")


def test_the_issues_examples():
    # detection table of the issue: "0.01429 ± 0.009 [-0.007989, 0.03657]", "0.2128 ± 0.15 [-0.1555, 0.5812]"
    assert interval_text(0.01429, -0.007989, 0.03657, UNIT) == "0.014 [0.000, 0.037]"
    assert interval_text(0.2128, -0.1555, 0.5812, UNIT) == "0.21 [0.00, 0.58]"
    # the same intervals unbounded keep their negative ends
    assert interval_text(0.2128, -0.1555, 0.5812) == "0.21 [-0.16, 0.58]"


@pytest.mark.parametrize(
    ("half", "places"),
    [(0.37, 2), (0.15, 2), (0.0093, 4), (3.7, 1), (150.0, -1), (0.0996, 2), (0.099, 3), (1.0, 1)],
)
def test_decimals_keep_two_significant_digits_of_the_half_width(half, places):
    assert decimals(half) == places


def test_no_interval_gives_three_significant_digits():
    assert decimals(0.0) is None and decimals(math.nan) is None
    assert rounded(0.123456, math.nan, math.nan).text() == "0.123"
    assert rounded(0.5, 0.5, 0.5).text() == "0.500"  # identical seeds: no spread, no interval
    # float rounding of a t-interval over identical values is not an interval
    assert rounded(0.48, 0.48 - 1e-17, 0.48 + 1e-17).text() == "0.480"
    assert significant(1234.5) == "1230" and significant(0.000123456) == "0.000123"
    assert significant(0.0) == "0" and significant(math.nan) == "n/a"


def test_rounding_of_negative_places_and_no_negative_zero():
    assert interval_text(1234.0, 1084.0, 1384.0) == "1230 [1080, 1380]"
    assert interval_text(-0.0001, -0.3, 0.3) == "0.00 [-0.30, 0.30]"
    assert value_at(0.123456, 2) == "0.12" and value_at(0.123456, None) == "0.123"


def test_property_printed_precision_matches_the_interval():
    """Over many random estimates and intervals: estimate and ends share one decimal place, at
    which the half-width has exactly two significant digits; bounded ends stay in range."""
    rng = np.random.default_rng(0)
    for _ in range(2000):
        half = 10 ** rng.uniform(-8, 3)
        est = rng.uniform(-2, 2) * 10 ** rng.uniform(-8, 3)
        r = rounded(est, est - half, est + half)
        d = r.places
        if d is None:  # float rounding, not an interval (NEGLIGIBLE)
            assert half <= 1e-9 * max(1.0, abs(est))
            continue
        for text in (r.estimate, r.low, r.high, r.half):
            assert (len(text.split(".")[1]) if "." in text else 0) == max(d, 0), (text, d)
        printed_half = (float(r.high) - float(r.low)) / 2.0
        assert 9.5 <= round(printed_half * 10**d, 6) <= 100.5, (est, half, r)
        assert 10 <= round(float(r.half) * 10**d) <= 99, (est, half, r)
        scale = 10.0**r.exponent
        assert abs(float(r.estimate) * scale - est) <= 0.5 * 10 ** (-d) * scale * (1 + 1e-9)
        if 0 <= est <= 1:
            b = rounded(est, est - half, est + half, UNIT)
            s_b = 10.0**b.exponent
            assert 0.0 <= float(b.low) * s_b <= float(b.high) * s_b <= 1.0, (est, half, b)


def test_bounds_and_clipping():
    assert bounds_of("mAP50") == UNIT and bounds_of("IoU") == UNIT and bounds_of("mIoU") == UNIT
    assert bounds_of("Qabf", "fusion") == UNIT and bounds_of("PSNR", "fusion") is None
    assert bounds_of("SSIM", "fusion") == (-2.0, 2.0)  # SSIM(F, A) + SSIM(F, B)
    assert difference_bounds(UNIT) == (-1.0, 1.0) and difference_bounds(None) is None
    low, high, moved = clip(np.array([-0.1, 0.2, np.nan]), np.array([0.5, 1.2, np.nan]), UNIT)
    assert moved and list(low[:2]) == [0.0, 0.2] and list(high[:2]) == [0.5, 1.0]
    assert np.isnan(low[2]) and np.isnan(high[2])
    assert clip(0.1, 0.9, UNIT) == (0.1, 0.9, False)
    r = rounded(0.9, 0.7, 1.1, UNIT)
    assert r.clipped and r.text() == "0.90 [0.70,\xa01.00]"
    # an estimate outside the assumed range: the range does not apply, nothing is clipped
    assert rounded(1.3, 1.2, 1.4, UNIT).text() == "1.30 [1.20,\xa01.40]"


def test_pm_text_switches_to_the_interval_when_the_range_clips_it():
    assert pm_text(6.8312, 0.0523) == "6.831 ± 0.052"
    assert pm_text(0.003, 0.004, UNIT) == "0.0030 [0.0000, 0.0070]"
    assert pm_text(0.5, math.nan) == "0.500"


def test_tiny_values_get_an_exponent():
    # Nabf-like means: "0.00000077 ± 0.00000023" is honest but unreadable
    assert pm_text(7.7e-7, 2.3e-7) == "(7.7 ± 2.3)e-7"
    assert pm_text(8.8e-5, 4.1e-5) == "(8.8 ± 4.1)e-5"
    assert pm_text(0.0094, 0.0021) == "0.0094 ± 0.0021"  # four decimals: still plain
    assert interval_text(9.4e-6, -1e-6, 2.1e-5, UNIT) == "(0.9 [0.0, 2.1])e-5"


def test_intervals_do_not_break_across_lines():
    assert "\xa0" in precision.interval_text(0.2, 0.1, 0.3) and "\xa0" in precision.pm_text(
        6.8, 0.05
    )


def test_p_values():
    assert p_text(0.04567) == "0.046" and p_text(0.0004) == "<0.001" and p_text(1.0) == "1.0"
    assert p_equals(0.0004) == "p < 0.001" and p_equals(0.2) == "p = 0.20"
    assert p_text(math.nan) == "n/a"


def test_spearman_interval_contains_rho_and_stays_in_range():
    for rho, n in [(0.9, 6), (-0.8, 6), (0.3, 40), (0.0, 10)]:
        low, high = spearman_interval(rho, n)
        assert -1 < low < rho < high < 1
    assert (
        spearman_interval(0.9, 40)[0] > spearman_interval(0.9, 6)[0]
    )  # narrower with more methods
    assert all(np.isnan(spearman_interval(0.5, 3)))  # too few methods
    assert all(np.isnan(spearman_interval(1.0, 6)))  # perfect agreement: no Fisher z
    assert all(np.isnan(spearman_interval(np.nan, 10)))


def test_spearman_interval_covers_at_about_the_nominal_rate():
    """Bivariate normal samples of 20 items, population rho_s known in closed form: the 95%
    interval covers it in 90 to 99% of 400 simulations."""
    rng = np.random.default_rng(1)
    r = 0.6
    rho_s = 6 / np.pi * np.arcsin(r / 2)  # Spearman's rho of a bivariate normal
    cov = [[1, r], [r, 1]]
    hits = 0
    for _ in range(400):
        x = rng.multivariate_normal([0, 0], cov, size=20)
        rho, _, n = spearman(x[:, 0], x[:, 1])
        low, high = spearman_interval(rho, n)
        hits += low <= rho_s <= high
    coverage = hits / 400
    print(f"coverage of the 95% Spearman interval, n = 20: {coverage:.3f}")
    assert 0.90 <= coverage <= 0.99


def test_spearman_agrees_with_scipy():
    x, y = [1, 2, 3, 4, 5, 6], [2, 1, 4, 3, 6, 5]
    rho, p, n = spearman(x, y)
    assert rho == pytest.approx(sps.spearmanr(x, y).statistic) and n == 6


def test_interval_text_format():
    text = interval_text(0.61, 0.55, 0.67, UNIT, spread=0.024)
    assert text == "0.610 ± 0.024 [0.550, 0.670]"  # half-width 0.060: three decimals
