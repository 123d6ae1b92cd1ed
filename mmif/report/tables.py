"""The report's tables as pandas DataFrames, and their CSV / Markdown files.

Numeric tables (CSV) keep full precision and one value per cell; display tables (Markdown and
HTML) combine mean, std and interval into one text cell per method and score.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd

from mmif.io import write_text
from mmif.report.loading import Results, SeedRun
from mmif.report.stats import mean_ci, spearman

#: display order of the fusion metrics (docs/METRICS.md); others follow alphabetically
FUSION_METRICS = (
    "EN", "SD", "SF", "AG", "MI", "SCD", "VIF", "Qabf", "SSIM", "PSNR", "MSE", "CC", "Nabf",
    "MS_SSIM", "FMI_pixel", "FMI_w",
)  # fmt: skip
#: fusion metrics where lower is better (artefacts, error)
LOWER_IS_BETTER = frozenset({"MSE", "Nabf"})
#: task scores shown first and used for plots and correlations
HEADLINE_SCORES = {"detect": ("mAP50", "mAP50_95"), "segment": ("mIoU", "pixel_accuracy")}
#: per-class value of each task
PER_CLASS_KEY = {"detect": "AP50", "segment": "IoU"}
FUSION_META_KEYS = frozenset({"convention", "n_images", "method", "split", "name"})


def fmt(value: object, digits: int = 4) -> str:
    """Compact text for a table cell; NaN/None as "n/a"."""
    if value is None:
        return "n/a"
    if isinstance(value, (bool, np.bool_)):
        return "yes" if value else "no"
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    if isinstance(value, (float, np.floating)):
        if not math.isfinite(float(value)):
            return "n/a"
        return f"{float(value):.{digits}g}"
    return str(value)


def fusion_metric_names(results: Results) -> list[str]:
    names: set[str] = set()
    for data in results.fusion.values():
        names |= {k for k, v in data.items() if k not in FUSION_META_KEYS and _is_number(v)}
    return [m for m in FUSION_METRICS if m in names] + sorted(names - set(FUSION_METRICS))


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
    """Wide text table: "mean ± std [low, high]" per method and score, significant gains marked."""
    if summary.empty:
        return pd.DataFrame()
    scores = list(dict.fromkeys(summary["score"]))
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
            cell = fmt(r["mean"])
            if np.isfinite(r["std"]):
                cell += f" ± {fmt(r['std'], 2)} [{fmt(r['ci_low'])}, {fmt(r['ci_high'])}]"
            marks = _marks(comparisons, m, score)
            row[score] = cell + (f" {marks}" if marks else "")
        rows.append(row)
    return pd.DataFrame(rows)


def _marks(comparisons: pd.DataFrame, method: str, score: str) -> str:
    if comparisons.empty:
        return ""
    sel = comparisons[(comparisons["method"] == method) & (comparisons["score"] == score)]
    return "".join(sel["mark"].astype(str))


def per_class_table(
    task: str, runs: dict[str, dict[int, SeedRun]], methods: list[str]
) -> pd.DataFrame:
    """method x class: per-class AP50 (detect) or IoU (segment), mean over seeds."""
    key = PER_CLASS_KEY[task]
    classes: list[str] = []
    for seeds in runs.values():
        for run in seeds.values():
            classes += [c for c in run.per_class if c not in classes]
    rows = []
    for m in methods:
        seeds = runs.get(m)
        if not seeds:
            continue
        row = {"method": m}
        for c in classes:
            vals = [_number(r.per_class.get(c, {}).get(key)) for r in seeds.values()]
            vals = [v for v in vals if np.isfinite(v)]
            row[c] = float(np.mean(vals)) if vals else np.nan
        rows.append(row)
    return pd.DataFrame(rows, columns=["method", *classes])


def correlation_table(
    fusion: pd.DataFrame, summaries: dict[str, pd.DataFrame], scores: dict[str, list[str]]
) -> pd.DataFrame:
    """Spearman's rho between each fusion metric and each task score across methods (seed means)."""
    rows = []
    if fusion.empty:
        return pd.DataFrame(columns=["task", "score", "metric", "rho", "p_value", "n_methods"])
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
                rows.append(
                    {
                        "task": task,
                        "score": score,
                        "metric": metric,
                        "rho": rho,
                        "p_value": p,
                        "n_methods": n,
                    }
                )
    return pd.DataFrame(rows, columns=["task", "score", "metric", "rho", "p_value", "n_methods"])


def display_frame(df: pd.DataFrame) -> pd.DataFrame:
    """Every cell as compact text (for Markdown and HTML)."""
    return df.apply(lambda col: col.map(fmt)) if not df.empty else df


def to_markdown(df: pd.DataFrame) -> str:
    if df.empty:
        return "_not available_\n"
    return display_frame(df).to_markdown(index=False) + "\n"


def write_table(df: pd.DataFrame, folder: Path, name: str, caption: str) -> tuple[str, str]:
    """Write `<folder>/<name>.csv` (full precision) and `<name>.md` (caption + display table);
    returns the two file names."""
    folder.mkdir(parents=True, exist_ok=True)
    write_text(folder / f"{name}.csv", df.to_csv(index=False))
    write_text(folder / f"{name}.md", f"{caption}\n\n{to_markdown(df)}")
    return f"{name}.csv", f"{name}.md"


def _is_number(v: object) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _number(v: object) -> float:
    return float(v) if _is_number(v) else np.nan
