"""The report's tables as pandas DataFrames, and their CSV / Markdown files.

Numeric tables (CSV) keep full precision and one value per cell; display tables (Markdown and
HTML) combine an estimate and its interval into one text cell, rounded to what the interval
supports (`report.precision`: one rule for every table).
"""

from __future__ import annotations

import math
import re
from pathlib import Path

import numpy as np
import pandas as pd

from mmif.io import write_text
from mmif.metric_catalog import METRIC_NAMES
from report.loading import Results, SeedRun
from report.precision import (
    FALLBACK_DIGITS,
    bounds_of,
    difference_bounds,
    interval_text,
    p_text,
    pm_text,
    rounded,
    significant,
    value_at,
)
from report.stats import mean_ci, spearman, spearman_interval

#: task scores shown first and used for plots and correlations
HEADLINE_SCORES = {"detect": ("mAP50", "mAP50_95"), "segment": ("mIoU", "pixel_accuracy")}
#: scores of other libraries kept as cross-checks (CSV, recomputed table), not shown per method
CROSS_CHECK_PREFIXES = ("tm_", "ul_")
#: per-class value of each task
PER_CLASS_KEY = {"detect": "AP50", "segment": "IoU"}
FUSION_META_KEYS = frozenset({"convention", "n_images", "method", "split", "name"})
#: cells printed right-aligned: numbers, intervals, p-values, n/a
NUMBER = re.compile(r"^(n/a|[-+<(]?\d)")


def numeric_column(values) -> bool:
    """A display column of numbers (and empty cells): right-aligned in Markdown and HTML."""
    return all(str(v) == "" or NUMBER.match(str(v)) for v in values)


def fmt(value: object, digits: int = FALLBACK_DIGITS) -> str:
    """Compact text for a table cell; NaN/None as "n/a"; a float without an interval with
    `digits` significant digits (the precision rule's fallback)."""
    if value is None:
        return "n/a"
    if isinstance(value, (bool, np.bool_)):
        return "yes" if value else "no"
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    if isinstance(value, (float, np.floating)):
        if not math.isfinite(float(value)):
            return "n/a"
        return significant(float(value), digits)
    return str(value)


def fusion_metric_names(results: Results) -> list[str]:
    names: set[str] = set()
    for data in results.fusion.values():
        names |= {k for k, v in data.items() if k not in FUSION_META_KEYS and _is_number(v)}
    return [m for m in METRIC_NAMES if m in names] + sorted(names - set(METRIC_NAMES))


def conventions(results: Results) -> dict[str, str]:
    """method -> fusion-metric convention named in its metrics file ("unknown" if absent)."""
    return {m: str(d.get("convention", "unknown")) for m, d in results.fusion.items()}


def fusion_table(results: Results, methods: list[str]) -> pd.DataFrame:
    """Mean of every fusion metric over the test images: rows methods, columns metrics."""
    names = fusion_metric_names(results)
    rows = []
    for m in methods:
        data = results.fusion.get(m)
        if data is None:
            continue
        row = {
            "method": m,
            "convention": str(data.get("convention", "unknown")),
            "n_images": data.get("n_images"),
        }
        row.update({k: float(data[k]) if _is_number(data.get(k)) else np.nan for k in names})
        rows.append(row)
    return pd.DataFrame(rows, columns=["method", "convention", "n_images", *names])


def fusion_intervals(results: Results, methods: list[str], level: float) -> pd.DataFrame:
    """Long table: each method's fusion metric mean over the test images with its t-interval
    over the images (from <method>_per_image.csv; NaN interval without per-image values).

    The interval covers the sampling of test images only: a learned fusion method trained once
    has no seed spread to add.
    """
    names = fusion_metric_names(results)
    rows = []
    for m in methods:
        data = results.fusion.get(m)
        if data is None:
            continue
        per_image = results.fusion_per_image.get(m)
        for k in names:
            mean = float(data[k]) if _is_number(data.get(k)) else np.nan
            low = high = np.nan
            n = int(data.get("n_images") or 0)
            if per_image is not None and k in per_image.columns:
                s = mean_ci(pd.to_numeric(per_image[k], errors="coerce").to_numpy(float), level)
                if s.n > 1 and np.isfinite(mean):
                    half = (s.ci_high - s.ci_low) / 2.0
                    low, high, n = mean - half, mean + half, s.n
            rows.append(
                {
                    "method": m,
                    "metric": k,
                    "mean": mean,
                    "ci_low": low,
                    "ci_high": high,
                    "n_images": n,
                }
            )
    return pd.DataFrame(rows, columns=["method", "metric", "mean", "ci_low", "ci_high", "n_images"])


def fusion_display(fusion: pd.DataFrame, intervals: pd.DataFrame) -> pd.DataFrame:
    """Display form of `fusion_table`: "mean ± half-width" (t-interval over the test images),
    rounded by the precision rule; "mean [low, high]" where the range clips it."""
    if fusion.empty:
        return fusion
    names = [c for c in fusion.columns if c not in ("method", "convention", "n_images")]
    ci = intervals.set_index(["method", "metric"]) if len(intervals) else None
    rows = []
    for _, r in fusion.iterrows():
        row: dict[str, object] = {"method": r["method"]}
        for k in names:
            half = np.nan
            if ci is not None and (r["method"], k) in ci.index:
                c = ci.loc[(r["method"], k)]
                half = (float(c["ci_high"]) - float(c["ci_low"])) / 2.0
            row[k] = pm_text(float(r[k]), half, bounds_of(k, "fusion"))
        rows.append(row)
    return pd.DataFrame(rows)


def fusion_labels(fusion: pd.DataFrame, intervals: pd.DataFrame, metrics: list[str]) -> np.ndarray:
    """(methods, metrics) text of each mean at the precision its interval supports (heatmap)."""
    ci = intervals.set_index(["method", "metric"]) if len(intervals) else None
    out = np.empty((len(fusion), len(metrics)), dtype=object)
    for i, (_, r) in enumerate(fusion.iterrows()):
        for j, k in enumerate(metrics):
            low = high = np.nan
            if ci is not None and (r["method"], k) in ci.index:
                c = ci.loc[(r["method"], k)]
                low, high = float(c["ci_low"]), float(c["ci_high"])
            out[i, j] = rounded(float(r[k]), low, high).value()
    return out


def task_scores(task: str, runs: dict[str, dict[int, SeedRun]]) -> list[str]:
    """Every numeric score of the task's metrics files, headline scores first."""
    names: set[str] = set()
    for seeds in runs.values():
        for run in seeds.values():
            names |= set(run.scores)
    head = [s for s in HEADLINE_SCORES.get(task, ()) if s in names]
    return head + sorted(names - set(head))


def headline_scores(task: str, runs: dict[str, dict[int, SeedRun]]) -> list[str]:
    present = task_scores(task, runs)
    head = [s for s in HEADLINE_SCORES.get(task, ()) if s in present]
    return head or present[:2]


def task_protocols(runs: dict[str, dict[int, SeedRun]]) -> dict[str, str]:
    """method -> the protocol its runs were scored under ("frozen (finetune asked)" when a
    method without fused train images fell back to frozen); "retrain" for older results."""
    out = {}
    for method, seeds in runs.items():
        got = sorted({str(r.metrics.get("protocol") or "retrain") for r in seeds.values()})
        asked = sorted(
            {
                str(r.metrics["requested_protocol"])
                for r in seeds.values()
                if r.metrics.get("requested_protocol")
            }
        )
        text = "+".join(got)
        if asked:
            text += f" ({'+'.join(asked)} asked; no fused train images)"
        out[method] = text
    return out


def protocol_text(protocols: dict[str, str]) -> str:
    """One protocol for a task ("frozen"), or the common one with the exceptions named."""
    if not protocols:
        return "n/a"
    values = list(protocols.values())
    main = max(dict.fromkeys(values), key=values.count)
    others = [f"{m}: {p}" for m, p in protocols.items() if p != main]
    return main + (f" ({'; '.join(others)})" if others else "")


def task_summary(
    task: str, runs: dict[str, dict[int, SeedRun]], methods: list[str], level: float
) -> pd.DataFrame:
    """Long table: one row per method and score with mean, std and t-interval over seeds."""
    rows = []
    scores = task_scores(task, runs)
    protocols = task_protocols(runs)
    for m in methods:
        seeds = runs.get(m)
        if not seeds:
            continue
        for score in scores:
            values = [r.scores.get(score, np.nan) for r in seeds.values()]
            s = mean_ci(values, level)
            rows.append(
                {
                    "task": task,
                    "method": m,
                    "score": score,
                    "mean": s.mean,
                    "std": s.std,
                    "ci_low": s.ci_low,
                    "ci_high": s.ci_high,
                    "n_seeds": s.n,
                    "seeds": " ".join(str(k) for k in seeds),
                    "protocol": protocols[m],
                }
            )
    return pd.DataFrame(
        rows,
        columns=[
            "task",
            "method",
            "score",
            "mean",
            "std",
            "ci_low",
            "ci_high",
            "n_seeds",
            "seeds",
            "protocol",
        ],  # fmt: skip
    )


def task_display(
    summary: pd.DataFrame, methods: list[str], comparisons: pd.DataFrame
) -> pd.DataFrame:
    """Wide text table: "mean [low, high]" (t-interval over seeds, clipped to the score's range,
    rounded by the precision rule) per method and score, significant gains marked; the std and
    the cross-checks of other libraries (`CROSS_CHECK_PREFIXES`) are in the CSV."""
    if summary.empty:
        return pd.DataFrame()
    scores = [s for s in dict.fromkeys(summary["score"]) if not s.startswith(CROSS_CHECK_PREFIXES)]
    rows = []
    for m in methods:
        sub = summary[summary["method"] == m].set_index("score")
        if sub.empty:
            continue
        row = {"method": m, "protocol": sub["protocol"].iloc[0], "seeds": int(sub["n_seeds"].max())}
        for score in scores:
            if score not in sub.index:
                row[score] = "n/a"
                continue
            r = sub.loc[score]
            cell = interval_text(r["mean"], r["ci_low"], r["ci_high"], bounds_of(score))
            marks = _marks(comparisons, m, score)
            row[score] = cell + (f" {marks}" if marks else "")
        rows.append(row)
    return pd.DataFrame(rows)


def _marks(comparisons: pd.DataFrame, method: str, score: str) -> str:
    if comparisons.empty:
        return ""
    sel = comparisons[(comparisons["method"] == method) & (comparisons["score"] == score)]
    return "".join(sel["mark"].astype(str))


def per_class_cells(
    task: str, runs: dict[str, dict[int, SeedRun]], methods: list[str]
) -> dict[tuple[str, str], list[float]]:
    """(method, class) -> per-seed AP50 (detect) or IoU (segment), finite values only."""
    key = PER_CLASS_KEY[task]
    classes: list[str] = []
    for seeds in runs.values():
        for run in seeds.values():
            classes += [c for c in run.per_class if c not in classes]
    cells: dict[tuple[str, str], list[float]] = {}
    for m in methods:
        for c in classes:
            vals = [_number(r.per_class.get(c, {}).get(key)) for r in runs.get(m, {}).values()]
            if runs.get(m):
                cells[(m, c)] = [v for v in vals if np.isfinite(v)]
    return cells


def per_class_table(
    task: str, runs: dict[str, dict[int, SeedRun]], methods: list[str]
) -> pd.DataFrame:
    """method x class: per-class AP50 (detect) or IoU (segment), mean over seeds."""
    cells = per_class_cells(task, runs, methods)
    return cells_table(cells, methods, lambda v: float(np.mean(v)) if v else np.nan)


def per_class_display(
    task: str, runs: dict[str, dict[int, SeedRun]], methods: list[str], level: float
) -> pd.DataFrame:
    """Display form of `per_class_table`: "mean ± half-width" of the t-interval over seeds,
    clipped to [0, 1] (then written "mean [low, high]")."""
    return cells_table(per_class_cells(task, runs, methods), methods, lambda v: cell_text(v, level))


def cell_text(
    values: list[float], level: float, bounds: tuple[float, float] | None = (0.0, 1.0)
) -> str:
    """A mean over seeds as "mean ± half-width" (t-interval), rounded by the precision rule."""
    if not values:
        return "n/a"
    s = mean_ci(values, level)
    return pm_text(s.mean, (s.ci_high - s.ci_low) / 2.0, bounds)


def cell_label(values: list[float], level: float) -> str:
    """The mean alone at the precision its interval supports (heatmap labels)."""
    if not values:
        return "n/a"
    s = mean_ci(values, level)
    return rounded(s.mean, s.ci_low, s.ci_high).value()


def cells_table(
    cells: dict[tuple[str, str], list[float]], methods: list[str], value
) -> pd.DataFrame:
    """method x column table of `value(per-seed values)` from (method, column) cells."""
    columns: list[str] = []
    for _, c in cells:
        if c not in columns:
            columns.append(c)
    rows = []
    for m in methods:
        if not any(k[0] == m for k in cells):
            continue
        row: dict[str, object] = {"method": m}
        for c in columns:
            row[c] = value(cells.get((m, c), []))
        rows.append(row)
    return pd.DataFrame(rows, columns=["method", *columns])


CORRELATION_COLUMNS = [
    "task",
    "score",
    "metric",
    "rho",
    "ci_low",
    "ci_high",
    "p_value",
    "n_methods",
]


def correlation_table(
    fusion: pd.DataFrame,
    summaries: dict[str, pd.DataFrame],
    scores: dict[str, list[str]],
    level: float = 0.95,
) -> pd.DataFrame:
    """Spearman's rho between each fusion metric and each task score across methods (seed
    means), with its interval (`stats.spearman_interval`: Fisher's z, Bonett-Wright variance)."""
    rows = []
    if fusion.empty:
        return pd.DataFrame(columns=CORRELATION_COLUMNS)
    metrics = [c for c in fusion.columns if c not in ("method", "convention", "n_images")]
    fus = fusion.set_index("method")
    for task, summary in summaries.items():
        for score in scores.get(task, []):
            means = summary[summary["score"] == score].set_index("method")["mean"]
            shared = [m for m in fus.index if m in means.index]
            for metric in metrics:
                rho, p, n = spearman(
                    fus.loc[shared, metric].to_numpy(float), means.loc[shared].to_numpy(float)
                )
                low, high = spearman_interval(rho, n, level)
                rows.append(
                    {
                        "task": task,
                        "score": score,
                        "metric": metric,
                        "rho": rho,
                        "ci_low": low,
                        "ci_high": high,
                        "p_value": p,
                        "n_methods": n,
                    }
                )
    return pd.DataFrame(rows, columns=CORRELATION_COLUMNS)


def correlation_display(correlations: pd.DataFrame) -> pd.DataFrame:
    """Wide view: one row per fusion metric, one "rho [low, high]" column per task score."""
    df = correlations.assign(
        col=correlations["task"] + " " + correlations["score"],
        text=[
            interval_text(r["rho"], r["ci_low"], r["ci_high"], (-1.0, 1.0))
            for _, r in correlations.iterrows()
        ],
    )
    order = list(dict.fromkeys(df["metric"]))
    wide = df.pivot(index="metric", columns="col", values="text").reindex(order)
    return wide.reset_index().rename_axis(columns=None)


def significance_display(comparisons: pd.DataFrame) -> pd.DataFrame:
    """Display form of significance.csv: the difference with its interval (clipped to [-1, 1]),
    p, the seed std of the within-seed difference at the difference's precision, the verdict."""
    rows = []
    for _, r in comparisons.iterrows():
        d = rounded(r["delta"], r["ci_low"], r["ci_high"], difference_bounds(bounds_of(r["score"])))
        rows.append(
            {
                "task": r["task"],
                "score": r["score"],
                "method": r["method"],
                "baseline": r["baseline"],
                "protocol": r["protocol"],
                "pairing": r["pairing"],
                "seeds": r["n_seeds"],
                "images": r["n_images"],
                "difference [interval]": d.text(),
                "p": p_text(r["p_value"]),
                "seed_sd": value_at(r["seed_sd"], d.places),
                "verdict": r["verdict"] + (f" {r['mark']}" if r["mark"] else ""),
            }
        )
    return pd.DataFrame(rows)


def best_display(best: pd.DataFrame, summaries: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """Display form of best_methods.csv: each method's score with its own t-interval over seeds
    and its difference to the best with that interval (seeds and test images)."""
    rows = []
    for _, r in best.iterrows():
        summary = summaries.get(r["task"], pd.DataFrame())
        own = (
            summary[(summary["method"] == r["method"]) & (summary["score"] == r["score"])]
            if len(summary)
            else summary
        )
        bounds = bounds_of(r["score"])
        value = (
            interval_text(
                own["mean"].iloc[0], own["ci_low"].iloc[0], own["ci_high"].iloc[0], bounds
            )
            if len(own)
            else significant(r["value"])
        )
        is_best = r["method"] == r["best"]
        rows.append(
            {
                "task": r["task"],
                "score": r["score"],
                "method": r["method"],
                "protocol": r["protocol"],
                "value [t-interval]": value,
                "difference to best [interval]": "best"
                if is_best
                else rounded(
                    r["delta_to_best"], r["ci_low"], r["ci_high"], difference_bounds(bounds)
                ).text(),
                "p": "" if is_best else p_text(r["p_value"]),
                "indistinguishable": bool(r["indistinguishable"]),
            }
        )
    return pd.DataFrame(rows)


def sanity_display(sanity: pd.DataFrame) -> pd.DataFrame:
    """Display form of sanity.csv: each known effect with its difference and interval."""
    rows = []
    for _, r in sanity.iterrows():
        score = "AP50" if r["task"] == "detect" else "IoU"
        d = rounded(r["delta"], r["ci_low"], r["ci_high"], difference_bounds(bounds_of(score)))
        rows.append(
            {
                "task": r["task"],
                "effect": r["effect"],
                "images": r["images"],
                "difference [interval]": d.text(),
                "p": p_text(r["p_value"]),
                "seed_sd": value_at(r["seed_sd"], d.places),
                "detected": bool(r["detected"]),
            }
        )
    return pd.DataFrame(rows)


def display_frame(df: pd.DataFrame) -> pd.DataFrame:
    """Every cell as compact text (for Markdown and HTML)."""
    return df.apply(lambda col: col.map(fmt)) if not df.empty else df


def to_markdown(df: pd.DataFrame) -> str:
    if df.empty:
        return "_not available_\n"
    # numbers are text already, rounded by the precision rule: tabulate must not re-parse them
    # ("0.50" would print as "0.5")
    shown = display_frame(df)
    align = ["right" if numeric_column(shown[c]) else "left" for c in shown]
    return shown.to_markdown(index=False, disable_numparse=True, colalign=align) + "\n"


def write_table(
    df: pd.DataFrame,
    folder: Path,
    name: str,
    caption: str,
    display: pd.DataFrame | None = None,
) -> tuple[str, str]:
    """Write `<folder>/<name>.csv` (full precision) and `<name>.md` (caption + the display
    table, `df` itself when none is given); returns the two file names."""
    folder.mkdir(parents=True, exist_ok=True)
    write_text(folder / f"{name}.csv", df.to_csv(index=False))
    shown = df if display is None else display
    write_text(folder / f"{name}.md", f"{caption}\n\n{to_markdown(shown)}")
    return f"{name}.csv", f"{name}.md"


def _is_number(v: object) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _number(v: object) -> float:
    return float(v) if _is_number(v) else np.nan
