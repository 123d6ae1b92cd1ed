"""The findings (report.findings) on constructed results: a clear winner, a tie, nothing
significant, and the edge cases (one seed, a missing source, many methods).

The results are constructed as per-seed scores with bootstrap resamples (TaskStatistics) and go
through the report's own statistics (significance.compare, best_rows), so the findings are
tested on what the report would compute, not on hand-made verdicts.
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest

from report.config import ReportConfig
from report.findings import (
    ANCHORS,
    findings_bullets,
    markdown_link,
    names,
    task_findings,
)
from report.significance import SANITY_COLUMNS, TaskStatistics, best_rows, compare
from report.stats import mean_ci
from report.tables import CORRELATION_COLUMNS

CFG = ReportConfig(bootstrap_samples=200)
SEEDS = (0, 1, 2)


def _study(values: dict[str, list[float]], image_sd: float = 0.004, seed: int = 0):
    """TaskStatistics of a segmentation study: method -> mIoU per seed; every method and seed
    gets B = 200 resampled values around it (image noise)."""
    rng = np.random.default_rng(seed)
    stats = TaskStatistics("segment", [f"{i:05d}" for i in range(40)], ["road"], {})
    shared = rng.normal(0, image_sd, 200)  # resamples move all methods a little together
    for m, vals in values.items():
        stats.protocols[m] = "frozen"
        stats.mean_classes[m] = np.arange(1)
        for s, v in zip(SEEDS, vals, strict=False):
            boot = v + shared + rng.normal(0, image_sd, 200)
            stats.full.setdefault(m, {})[s] = {"all": np.array([v])}
            stats.boot.setdefault(m, {})[s] = {"all": boot[:, None]}
    return stats


def _summary(values: dict[str, list[float]]) -> pd.DataFrame:
    rows = []
    for m, vals in values.items():
        s = mean_ci(vals, 0.95)
        rows.append(
            {"task": "segment", "method": m, "score": "mIoU", "mean": s.mean, "std": s.std,
             "ci_low": s.ci_low, "ci_high": s.ci_high, "n_seeds": s.n}
        )  # fmt: skip
    return pd.DataFrame(rows)


def _findings(values, sanity=None, correlations=None, baselines=("vis", "ir")):
    stats = _study(values)
    comparisons = pd.DataFrame(compare(stats, list(baselines), CFG))
    best = pd.DataFrame(best_rows(stats, CFG))
    f = task_findings(
        "segment",
        "Semantic segmentation",
        _summary(values),
        comparisons,
        best,
        sanity if sanity is not None else pd.DataFrame(columns=SANITY_COLUMNS),
        correlations if correlations is not None else pd.DataFrame(columns=CORRELATION_COLUMNS),
        list(baselines),
        "frozen",
    )
    # intervals carry no-break spaces (one line each); the assertions read plain spaces
    return f, [b.replace("\xa0", " ") for b in findings_bullets(f, markdown_link, CFG.alpha)]


SEED_EFFECT = np.array([0.0, 0.05, -0.04])  # the shared model of each seed


def test_a_clear_winner():
    values = {
        "vis": list(0.50 + SEED_EFFECT),
        "ir": list(0.46 + SEED_EFFECT + [0.004, -0.003, 0.0]),
        "good": list(0.62 + SEED_EFFECT + [0.002, 0.0, -0.003]),
        "plain": list(0.49 + SEED_EFFECT + [-0.002, 0.004, 0.001]),
    }
    f, bullets = _findings(values)
    assert f.best == "good" and f.indistinguishable == [] and f.tested and f.any_significant
    assert [v.method for v in f.winners] == ["good"] and f.closest is None
    text = "\n".join(bullets)
    assert "Best: **good**" in text and "every other method is significantly worse" in text
    assert (
        "Fusion beats both sources: **yes**, 1 of 2 fusion methods is significantly better" in text
    )
    # the winner's differences with intervals at honest precision, and p
    assert re.search(r"\*\*good\*\* \+0\.1\d+ \[0\.\d+, 0\.\d+\] vs `vis` \(p [<=] [\d.]+\)", text)
    assert "Nothing is significant" not in text


def test_a_tie_at_the_top():
    values = {
        "vis": list(0.50 + SEED_EFFECT),
        "ir": list(0.45 + SEED_EFFECT + [0.003, -0.002, 0.001]),
        "a": list(0.60 + SEED_EFFECT + [0.010, -0.012, 0.004]),
        "b": list(0.60 + SEED_EFFECT + [-0.008, 0.009, 0.003]),
    }
    f, bullets = _findings(values)
    assert f.best in ("a", "b") and f.indistinguishable == [{"a": "b", "b": "a"}[f.best]]
    assert {v.method for v in f.winners} == {"a", "b"}
    text = "\n".join(bullets)
    assert f"indistinguishable from it: {f.indistinguishable[0]}" in text
    assert "2 of 2 fusion methods are significantly better than `vis` and `ir`" in text


def test_nothing_significant_is_said_plainly():
    # the same level, no seed effect: within-seed differences flip sign
    values = {
        "vis": [0.50, 0.60, 0.40],
        "ir": [0.60, 0.40, 0.50],
        "f1": [0.40, 0.50, 0.60],
        "f2": [0.55, 0.45, 0.50],
    }
    f, bullets = _findings(values)
    assert not f.any_significant and f.all_tied and f.winners == []
    text = "\n".join(bullets)
    assert bullets[0].startswith("**Nothing is significant.**")
    assert "all 4 methods are indistinguishable from the best" in text
    assert "Fusion beats both sources: **no**, none of the 2 fusion methods" in text
    assert "Closest:" in text and "Highest mean:" in text


def test_every_statement_links_to_its_evidence():
    values = {"vis": [0.5, 0.55, 0.45], "ir": [0.4, 0.46, 0.35], "x": [0.6, 0.66, 0.55]}
    sanity = pd.DataFrame(
        [
            {"task": "segment", "effect": "curb: vis > ir", "delta": 0.2, "ci_low": 0.1,
             "ci_high": 0.3, "p_value": 0.004, "detected": True},
            {"task": "segment", "effect": "person at night: ir > vis", "delta": 0.02,
             "ci_low": -0.05, "ci_high": 0.09, "p_value": 0.4, "detected": False},
        ]
    )  # fmt: skip
    corr = pd.DataFrame(
        [
            {"task": "segment", "score": "mIoU", "metric": "EN", "rho": 0.5, "ci_low": -0.5,
             "ci_high": 0.9, "p_value": 0.6, "n_methods": 3},
        ]
    )  # fmt: skip
    f, bullets = _findings(values, sanity, corr)
    anchors = {a.format(task="segment") for a in ANCHORS.values()}
    for bullet in bullets:
        linked = re.findall(r"\]\(#([\w-]+)\)", bullet)
        assert linked and set(linked) <= anchors, bullet
    text = "\n".join(bullets)
    assert (
        "Known effects of the synthetic data in semantic segmentation (2): 1 of 2 detected" in text
    )
    assert "person at night: ir > vis +0.020 [-0.050, 0.090] (p = 0.40), not detected" in text
    assert "Its interval includes 0" in text and "Caution: 3 methods are few" in text


def test_the_best_predicting_metric_respects_lower_is_better():
    values = {"vis": [0.5, 0.55, 0.45], "ir": [0.4, 0.46, 0.35], "x": [0.6, 0.66, 0.55]}
    corr = pd.DataFrame(
        [
            {"task": "segment", "score": "mIoU", "metric": m, "rho": r, "ci_low": lo,
             "ci_high": hi, "p_value": 0.01, "n_methods": 6}
            for m, r, lo, hi in [("EN", 0.6, -0.4, 0.95), ("MSE", -0.9, -0.99, -0.3), ("SSIM", np.nan, np.nan, np.nan)]
        ]
    )  # fmt: skip
    f, bullets = _findings(values, correlations=corr)
    assert f.predictor["metric"] == "MSE" and f.n_metrics == 2
    text = bullets[-1]
    assert text.startswith("Fusion metric that best predicts mIoU: MSE (lower is better")
    assert "rho -0.90 [-0.99, -0.30]" in text and "over 6 methods" in text
    assert "Its interval includes 0" not in text and "Caution: 6 methods" in text


def test_one_seed_is_untested():
    values = {"vis": [0.5], "ir": [0.4], "x": [0.9]}
    f, bullets = _findings(values)
    assert not f.tested and f.winners == []
    assert "Untested (one seed)" in bullets[0] and "x" in bullets[0]


def test_a_missing_source_is_named():
    values = {"vis": [0.5, 0.55, 0.45], "x": [0.6, 0.66, 0.55]}
    f, bullets = _findings(values)
    assert f.missing_baselines == ["ir"]
    assert any("not tested, no runs of `ir`" in b for b in bullets)


def test_forty_methods_stay_readable():
    values = {"vis": list(0.40 + SEED_EFFECT), "ir": list(0.38 + SEED_EFFECT)}
    rng = np.random.default_rng(3)
    for i in range(40):
        values[f"m{i:02d}"] = list(0.50 + 0.004 * i + SEED_EFFECT + rng.normal(0, 0.002, 3))
    f, bullets = _findings(values)
    assert len(f.winners) == 40
    text = "\n".join(bullets)
    assert "40 of 40 fusion methods are significantly better" in text
    assert "and 32 more" in text  # eight named, the rest counted
    assert max(len(b) for b in bullets) < 1500


def test_names():
    assert names([]) == "none" and names(["a"]) == "a" and names(["a", "b", "c"]) == "a, b and c"
    assert names([str(i) for i in range(10)], 3) == "0, 1, 2 and 7 more"


@pytest.mark.parametrize("baselines", [("vis", "ir"), ("vis",)])
def test_wording_follows_the_baselines(baselines):
    values = {"vis": [0.5, 0.55, 0.45], "ir": [0.4, 0.46, 0.35], "x": [0.7, 0.76, 0.65]}
    _, bullets = _findings(values, baselines=baselines)
    text = "\n".join(bullets)
    assert ("both sources" in text) == (len(baselines) == 2)
