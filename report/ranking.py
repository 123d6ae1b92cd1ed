"""Reading many methods: each task's ranking table, and the selection long displays show.

With 40 registered methods a table of every method and class, or a grid of every method's
images, stops being readable. The ranking table keeps every method (one row each: score, interval,
difference to the best, the group of methods indistinguishable from it, the difference to each
source). Every other long display (per-class and per-condition tables, the significance and
recomputed tables, the qualitative grid) shows the best `TOP`, the worst `BOTTOM` and the
sources once there are more than `MANY_METHODS`, and says so; its CSV keeps every method.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from report.precision import bounds_of, difference_bounds, interval_text, p_text, rounded

#: above this many methods, long displays show a selection (the CSV files keep all)
MANY_METHODS = 12
#: the best and worst methods a selection shows (besides the sources)
TOP = 5
BOTTOM = 3
#: ranking-table groups
BEST, TIED, WORSE, UNTESTED = "best", "indistinguishable", "worse", "untested"


def method_order(task: str, score: str, best: pd.DataFrame, summary: pd.DataFrame) -> list[str]:
    """The task's methods best first: the order of best_methods.csv (seed means of the tested
    statistic), else the seed mean of `score` in the task's table."""
    rows = best[best["task"] == task] if not best.empty else best
    if len(rows):
        return [str(m) for m in rows["method"]]
    sub = summary[summary["score"] == score].sort_values("mean", ascending=False, kind="stable")
    return [str(m) for m in sub["method"]]


def select(
    order: Sequence[str], always: Sequence[str] = (), top: int = TOP, bottom: int = BOTTOM
) -> list[str]:
    """`order` itself up to `MANY_METHODS` methods; beyond, its first `top`, last `bottom` and
    the `always` ones (the sources), in the order of `order`."""
    order = list(order)
    if len(order) <= MANY_METHODS:
        return order
    keep = set(order[:top]) | set(order[len(order) - bottom :]) | set(always)
    return [m for m in order if m in keep]


def selection_note(shown: Sequence[str], total: int, score: str, files: str) -> str:
    """The sentence a shortened display carries ("" when it shows every method)."""
    if len(shown) >= total:
        return ""
    return (
        f"Showing {len(shown)} of {total} methods: the {TOP} best and {BOTTOM} worst by {score} "
        f"and the sources; every method is in {files}."
    )


def ranking_table(
    task: str,
    score: str,
    best: pd.DataFrame,
    summary: pd.DataFrame,
    comparisons: pd.DataFrame,
    baselines: Sequence[str],
) -> pd.DataFrame:
    """One row per method, best first: rank, seed mean with its t-interval over seeds, the
    difference to the best with its interval over seeds and test images (best_methods.csv),
    the group, and the difference to each baseline (significance.csv)."""
    order = method_order(task, score, best, summary)
    own = summary[summary["score"] == score].set_index("method")
    b = best[best["task"] == task].set_index("method") if not best.empty else pd.DataFrame()
    rows = []
    for rank, method in enumerate(order, start=1):
        if method not in own.index:
            continue
        r = own.loc[method]
        row = {
            "task": task,
            "score": score,
            "rank": rank,
            "method": method,
            "protocol": r["protocol"],
            "mean": r["mean"],
            "ci_low": r["ci_low"],
            "ci_high": r["ci_high"],
            "n_seeds": int(r["n_seeds"]),
        }
        if method in getattr(b, "index", []):
            x = b.loc[method]
            is_best = method == x["best"]
            row.update(
                delta_to_best=x["delta_to_best"],
                best_ci_low=x["ci_low"],
                best_ci_high=x["ci_high"],
                best_p_value=x["p_value"],
                group=BEST if is_best else TIED if bool(x["indistinguishable"]) else WORSE,
            )
        else:
            row.update(
                delta_to_best=np.nan,
                best_ci_low=np.nan,
                best_ci_high=np.nan,
                best_p_value=np.nan,
                group=UNTESTED,
            )
        for baseline in baselines:
            c = (
                comparisons[
                    (comparisons["task"] == task)
                    & (comparisons["method"] == method)
                    & (comparisons["baseline"] == baseline)
                ]
                if not comparisons.empty
                else comparisons
            )
            first = c.iloc[0] if len(c) else None
            for key, col in (("delta", "delta"), ("ci_low", "ci_low"), ("ci_high", "ci_high"),
                             ("p", "p_value"), ("mark", "mark")):  # fmt: skip
                row[f"vs_{baseline}_{key}"] = (
                    first[col] if first is not None else ("" if key == "mark" else np.nan)
                )
        rows.append(row)
    return pd.DataFrame(rows)


def ranking_display(table: pd.DataFrame, baselines: Sequence[str]) -> pd.DataFrame:
    """The ranking table as text: every number at the precision its interval supports."""
    if table.empty:
        return pd.DataFrame()
    score = str(table["score"].iloc[0])
    bounds = bounds_of(score)
    diff = difference_bounds(bounds)
    rows = []
    for _, r in table.iterrows():
        row = {
            "rank": int(r["rank"]),
            "method": r["method"],
            f"{score} [t-interval]": interval_text(r["mean"], r["ci_low"], r["ci_high"], bounds),
            "group": r["group"],
            "difference to best [interval]": "best"
            if r["group"] == BEST
            else "n/a"
            if r["group"] == UNTESTED
            else _signed(
                rounded(r["delta_to_best"], r["best_ci_low"], r["best_ci_high"], diff).text()
            ),
            "p": "" if r["group"] in (BEST, UNTESTED) else p_text(r["best_p_value"]),
        }
        for baseline in baselines:
            if r["method"] == baseline:
                row[f"vs {baseline}"] = "(source)"
                continue
            d = r.get(f"vs_{baseline}_delta", np.nan)
            if not np.isfinite(float(d)):
                row[f"vs {baseline}"] = "n/a"
                continue
            text = _signed(
                rounded(d, r[f"vs_{baseline}_ci_low"], r[f"vs_{baseline}_ci_high"], diff).text()
            )
            mark = str(r.get(f"vs_{baseline}_mark") or "")
            row[f"vs {baseline}"] = text + (f" {mark}" if mark else "")
        rows.append(row)
    return pd.DataFrame(rows)


def _signed(text: str) -> str:
    """A difference with its sign written ("+0.12 [...]"), so it reads apart from a score."""
    return text if text.startswith(("-", "+", "n/a")) else f"+{text}"
