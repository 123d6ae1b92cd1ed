"""The report's findings: the answers to the study's question, generated from its statistics.

For each task, from the tables the report has already computed (never written by hand):

- the best method (highest seed mean of the tested score) with its score and interval;
- the methods indistinguishable from it (`best_methods.csv`);
- whether any fusion method (every method that is not a baseline, i.e. not a source image) is
  significantly better than every baseline (`significance.csv`), and which; otherwise the
  closest one;
- the known effects of the synthetic data and whether they were detected (`sanity.csv`);
- the fusion metric whose ranking of the methods agrees best with the task score (Spearman's rho
  with its interval, `correlations.csv`), with a caution when the methods are few.

`task_findings` turns the tables into a `TaskFindings` record (tested on constructed results);
`findings_bullets` writes it as sentences, each linking to the table or plot that supports it.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from mmif.metric_catalog import LOWER_IS_BETTER
from report.precision import bounds_of, difference_bounds, interval_text, p_equals, rounded
from report.significance import TESTED_SCORE

#: below this many methods a rank correlation and its interval are rough
FEW_METHODS = 10
#: names listed in a sentence before "and N more"
MAX_NAMES = 8

#: anchors of the tables and plots the findings cite (`report.document` derives them from
#: the file names: tab-<table>, fig-<plot>)
ANCHORS = {
    "scores": "tab-{task}_scores",
    "best": "tab-ranking_{task}",
    "differences": "fig-differences",
    "significance": "tab-significance",
    "sanity": "tab-sanity",
    "correlations": "tab-correlations",
}


@dataclass(frozen=True)
class Versus:
    """One fusion method against every baseline: baseline -> its row of significance.csv."""

    method: str
    rows: dict[str, pd.Series]

    @property
    def smallest_gain(self) -> float:
        return min(float(r["delta"]) for r in self.rows.values())


@dataclass
class TaskFindings:
    """What one task's statistics say (see the module docstring).

    best_value / best_low / best_high: the best method's seed mean and t-interval over seeds;
    indistinguishable: the other methods not significantly worse than the best (best excluded);
    tested: significance tests with training variance were possible (two or more seeds, the
    image bootstrap on); winners: fusion methods significantly better than every baseline;
    closest: without a winner, the fusion method whose smallest difference to a baseline is
    largest; losers_to_all: fusion methods significantly worse than every baseline.
    """

    task: str
    title: str
    score: str
    protocol: str
    n_methods: int
    n_seeds: int
    n_images: int | None
    best: str | None
    best_value: float = math.nan
    best_low: float = math.nan
    best_high: float = math.nan
    indistinguishable: list[str] = field(default_factory=list)
    tested: bool = False
    baselines: list[str] = field(default_factory=list)
    missing_baselines: list[str] = field(default_factory=list)
    fusion_methods: list[str] = field(default_factory=list)
    winners: list[Versus] = field(default_factory=list)
    closest: Versus | None = None
    losers_to_all: list[str] = field(default_factory=list)
    any_significant: bool = False
    effects: list[dict] = field(default_factory=list)
    predictor: dict | None = None
    n_metrics: int = 0

    @property
    def all_tied(self) -> bool:
        return self.tested and len(self.indistinguishable) == self.n_methods - 1


def _rows(df: pd.DataFrame, task: str) -> pd.DataFrame:
    if df is None or df.empty or "task" not in df.columns:
        return pd.DataFrame(columns=[] if df is None else df.columns)
    return df[df["task"] == task]


def task_findings(
    task: str,
    title: str,
    summary: pd.DataFrame,
    comparisons: pd.DataFrame,
    best: pd.DataFrame,
    sanity: pd.DataFrame,
    correlations: pd.DataFrame,
    baselines: Sequence[str],
    protocol: str,
) -> TaskFindings:
    """Collect one task's answers from the report's tables (pure; the inputs are the frames of
    `tables.task_summary`, `significance.significance` and `tables.correlation_table`)."""
    score = TESTED_SCORE.get(task, "")
    scores = summary[summary["score"] == score] if not summary.empty else summary
    if scores.empty and not summary.empty:  # a task without the tested score: its first one
        score = str(summary["score"].iloc[0])
        scores = summary[summary["score"] == score]
    methods = list(scores["method"]) if not scores.empty else []
    comp = _rows(comparisons, task)
    best_rows = _rows(best, task)
    n_seeds = int(scores["n_seeds"].max()) if len(scores) else 0
    out = TaskFindings(
        task=task,
        title=title,
        score=score,
        protocol=protocol,
        n_methods=len(methods),
        n_seeds=n_seeds,
        n_images=int(comp["n_images"].iloc[0]) if len(comp) else None,
        best=None,
    )
    present = set(methods)
    out.baselines = [b for b in baselines if b in present]
    out.missing_baselines = [b for b in baselines if b not in present]
    out.fusion_methods = [m for m in methods if m not in set(baselines)]

    # the best and the methods indistinguishable from it
    if len(best_rows):
        out.best = str(best_rows["best"].iloc[0])
        same = best_rows[best_rows["indistinguishable"].astype(bool)]
        out.indistinguishable = [str(m) for m in same["method"] if m != out.best]
        out.tested = bool(n_seeds > 1 and len(best_rows) > 1)
    elif len(scores):
        out.best = str(scores.loc[scores["mean"].astype(float).idxmax(), "method"])
    if out.best is not None and len(scores):
        row = scores.set_index("method").loc[out.best]
        out.best_value, out.best_low, out.best_high = (
            float(row["mean"]),
            float(row["ci_low"]),
            float(row["ci_high"]),
        )

    # fusion against every baseline
    if len(comp):
        out.any_significant = bool(comp["significant"].astype(bool).any()) or (
            out.tested and len(out.indistinguishable) < out.n_methods - 1
        )
        versus = []
        for m in out.fusion_methods:
            rows = {
                b: r
                for b in out.baselines
                for _, r in comp[(comp["method"] == m) & (comp["baseline"] == b)].iterrows()
            }
            if out.baselines and len(rows) == len(out.baselines):
                versus.append(Versus(m, rows))
        gains = [
            v
            for v in versus
            if all(bool(r["significant"]) and float(r["delta"]) > 0 for r in v.rows.values())
        ]
        out.winners = sorted(gains, key=lambda v: -v.smallest_gain)
        out.losers_to_all = [
            v.method
            for v in versus
            if all(bool(r["significant"]) and float(r["delta"]) < 0 for r in v.rows.values())
        ]
        if not out.winners and versus:
            out.closest = max(versus, key=lambda v: v.smallest_gain)
    elif out.tested:
        out.any_significant = len(out.indistinguishable) < out.n_methods - 1

    # known effects
    eff = _rows(sanity, task)
    out.effects = [dict(r) for _, r in eff.iterrows()]

    # the fusion metric that predicts the task score best
    corr = _rows(correlations, task)
    corr = corr[corr["score"] == score] if len(corr) else corr
    if len(corr):
        oriented = corr["rho"].astype(float) * np.where(
            corr["metric"].isin(LOWER_IS_BETTER), -1.0, 1.0
        )
        finite = oriented[np.isfinite(oriented)]
        out.n_metrics = int(len(finite))
        if len(finite):
            r = corr.loc[finite.idxmax()]
            out.predictor = {
                "metric": str(r["metric"]),
                "rho": float(r["rho"]),
                "ci_low": float(r.get("ci_low", np.nan)),
                "ci_high": float(r.get("ci_high", np.nan)),
                "p_value": float(r.get("p_value", np.nan)),
                "n_methods": int(r["n_methods"]),
                "lower_is_better": str(r["metric"]) in LOWER_IS_BETTER,
            }
    return out


def names(items: Sequence[str], limit: int = MAX_NAMES) -> str:
    """ "a, b and c"; beyond `limit` names: "a, b, ... and 12 more"."""
    items = [str(i) for i in items]
    if not items:
        return "none"
    if len(items) > limit:
        return f"{', '.join(items[:limit])} and {len(items) - limit} more"
    return items[0] if len(items) == 1 else f"{', '.join(items[:-1])} and {items[-1]}"


def _difference(row: pd.Series | dict, score: str, against: str = "") -> str:
    """ "+0.05 [0.01, 0.09] vs `vis` (p = 0.02)": a difference, its interval and p."""
    bounds = difference_bounds(bounds_of(score))
    text = interval_text(float(row["delta"]), float(row["ci_low"]), float(row["ci_high"]), bounds)
    sign = "+" if float(row["delta"]) > 0 and not text.startswith("-") else ""
    vs = f" vs `{against}`" if against else ""
    return f"{sign}{text}{vs} ({p_equals(float(row['p_value']))})"


def _versus(v: Versus, score: str) -> str:
    return " and ".join(_difference(r, score, b) for b, r in v.rows.items())


Link = Callable[[str, str], str]


def markdown_link(text: str, anchor: str) -> str:
    return f"[{text}](#{anchor})"


def findings_bullets(f: TaskFindings, link: Link = markdown_link, alpha: float = 0.05) -> list[str]:
    """The task's findings as sentences with Markdown links `[table](#anchor)` to the evidence:
    the answers, then the checks."""
    return answer_bullets(f, link, alpha) + check_bullets(f, link)


def _anchors(task: str) -> dict[str, str]:
    return {k: v.format(task=task) for k, v in ANCHORS.items()}


def answer_bullets(f: TaskFindings, link: Link = markdown_link, alpha: float = 0.05) -> list[str]:
    """The answers: the best method (and the ones indistinguishable from it), whether a fusion
    beats both sources; "nothing is significant" first when nothing is."""
    anchor = _anchors(f.task)
    out: list[str] = []
    if f.best is None:
        return [f"No {f.score} scores: nothing to compare."]
    score_bounds = bounds_of(f.score)
    best_r = rounded(f.best_value, f.best_low, f.best_high, score_bounds)
    best_text = best_r.text()
    interval_kind = (
        "t-interval over seeds"
        if best_r.places is not None
        else "one seed, no interval"
        if f.n_seeds < 2
        else "no spread over seeds"
    )
    ref_scores = link("scores", anchor["scores"])
    ref_best = link("ranking", anchor["best"])
    ref_diff = link("differences", anchor["differences"])
    ref_sig = link("table", anchor["significance"])

    if not f.tested:
        why = "one seed" if f.n_seeds < 2 else "no per-image results or bootstrap_samples is 0"
        out.append(
            f"Highest {f.score}: **{f.best}**, {best_text} ({interval_kind}; {ref_scores}). "
            f"Untested ({why}): the report makes no claim of a significant difference for this task."
        )
        return out

    if not f.any_significant:
        out.append(
            f"**Nothing is significant.** No method differs significantly from "
            f"{names(f.baselines) if f.baselines else 'the baselines'}, and all {f.n_methods} methods "
            f"are indistinguishable from the best at p < {alpha:g} ({ref_best}, {ref_diff})."
        )
    lead = "Best" if f.any_significant else "Highest mean"
    same = (
        f"all other {len(f.indistinguishable)} methods are indistinguishable from it"
        if f.all_tied
        else f"indistinguishable from it: {names(f.indistinguishable)}"
        if f.indistinguishable
        else "every other method is significantly worse"
    )
    out.append(
        f"{lead}: **{f.best}**, {f.score} {best_text} ({interval_kind}; {ref_scores}); "
        f"{same} ({ref_best})."
    )

    sources = " and ".join(f"`{b}`" for b in f.baselines)
    both = "both sources" if len(f.baselines) == 2 else "every baseline"
    if f.missing_baselines:
        out.append(
            f"Fusion against the sources: not tested, no runs of "
            f"{names([f'`{b}`' for b in f.missing_baselines])}."
        )
    elif not f.fusion_methods:
        out.append("Fusion against the sources: no fusion method in this run.")
    elif f.winners:
        parts = [f"**{v.method}** {_versus(v, f.score)}" for v in f.winners[:MAX_NAMES]]
        more = f" and {len(f.winners) - MAX_NAMES} more" if len(f.winners) > MAX_NAMES else ""
        n = len(f.winners)
        out.append(
            f"Fusion beats {both}: **yes**, {n} of {len(f.fusion_methods)} fusion "
            f"method{'s' if len(f.fusion_methods) > 1 else ''} "
            f"{'is' if n == 1 else 'are'} significantly better than {sources}: "
            + "; ".join(parts)
            + f"{more} ({ref_diff}, {ref_sig})."
        )
    else:
        text = (
            f"Fusion beats {both}: **no**, none of the {len(f.fusion_methods)} fusion methods is "
            f"significantly better than {sources}" + ("." if f.closest is not None else "")
        )
        if f.closest is not None:
            text += f" Closest: {f.closest.method}, {_versus(f.closest, f.score)}"
        out.append(f"{text} ({ref_diff}, {ref_sig}).")
    if f.losers_to_all:
        out.append(f"Significantly worse than {both}: {names(f.losers_to_all)} ({ref_diff}).")

    return out


def check_bullets(f: TaskFindings, link: Link = markdown_link) -> list[str]:
    """The checks: the known effects of the synthetic data, the best-predicting fusion metric."""
    anchor = _anchors(f.task)
    out: list[str] = []
    if f.effects:
        found = [e for e in f.effects if bool(e["detected"])]
        missed = [e for e in f.effects if not bool(e["detected"])]
        verdict = (
            "all detected"
            if not missed
            else "none detected"
            if not found
            else f"{len(found)} of {len(f.effects)} detected"
        )
        details = "; ".join(
            f"{e['effect']} {_difference(e, f.score)}{'' if bool(e['detected']) else ', not detected'}"
            for e in f.effects
        )
        out.append(
            f"Known effects of the synthetic data in {f.title.lower()} ({len(f.effects)}): "
            f"{verdict}. {details} ({link('sanity check', anchor['sanity'])})."
        )
    return out + _predictor_bullets(f, link, anchor)


def _predictor_bullets(f: TaskFindings, link: Link, anchor: dict[str, str]) -> list[str]:
    p = f.predictor
    if p is None:
        return []
    r = rounded(p["rho"], p["ci_low"], p["ci_high"], (-1.0, 1.0))
    rho = (
        r.text()
        if r.places is not None
        else f"{r.estimate} (no interval: "
        + ("fewer than 4 methods)" if p["n_methods"] < 4 else "a perfect rank agreement)")
    )
    direction = " (lower is better: a negative rho is agreement)" if p["lower_is_better"] else ""
    how = "interval from Fisher's z; " if r.places is not None else ""
    text = (
        f"Fusion metric that best predicts {f.score}: {p['metric']}{direction}, Spearman's rho {rho} "
        f"over {p['n_methods']} methods ({how}{link('correlations', anchor['correlations'])})."
    )
    if np.isfinite(p["ci_low"]) and p["ci_low"] <= 0 <= p["ci_high"]:
        text += " Its interval includes 0: no fusion metric is shown to predict this score."
    if p["n_methods"] < FEW_METHODS:
        text += f" Caution: {p['n_methods']} methods are few for a rank correlation"
        text += (
            f", and the best of {f.n_metrics} metrics is picked after the fact, so this rho is optimistic."
            if f.n_metrics > 1
            else "."
        )
    elif f.n_metrics > 1:
        text += (
            f" The best of {f.n_metrics} metrics is picked after the fact: its rho is optimistic."
        )
    return [text]


def lead_paragraph(n_tasks: int, level: float, alpha: float) -> str:
    if n_tasks == 0:
        return (
            "No task scores in this run: the findings need detection or segmentation results "
            "(see the sections below for what is available)."
        )
    return (
        "Generated from this report's statistics, not written by hand. Significant means p < "
        f"{alpha:g} for a difference whose variance includes what a rerun would change (the "
        f"training seeds and the test images); intervals are {level:.0%}. The links lead to the "
        "supporting table or plot."
    )
