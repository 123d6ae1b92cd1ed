"""The report's plots (matplotlib, no pyplot state), each saved as PNG and SVG.

Figures are built with `matplotlib.figure.Figure` directly, so nothing depends on the
interactive backend or global figure state, and saved with fixed metadata (no date, fixed SVG
id salt) so that an unchanged input gives byte-identical files for DVC.
"""

from __future__ import annotations

import logging
import math
from pathlib import Path

import matplotlib
import numpy as np
import pandas as pd
from matplotlib.figure import Figure as MplFigure

from mmif.metric_catalog import LOWER_IS_BETTER
from report.document import Figure
from report.figure_files import save_png_svg
from report.loading import SeedRun, read_csv
from report.precision import bounds_of, clip, difference_bounds, p_text, rounded
from report.ranking import MANY_METHODS
from report.tables import fmt

log = logging.getLogger(__name__)

DPI = 100
BASELINE_COLOUR = "#9e9e9e"
FUSION_COLOUR = "#1f77b4"


def save_figure(
    fig: MplFigure, folder: Path, name: str, caption: str, svg: bool = True, dpi: int = DPI
) -> Figure:
    """Write `<folder>/<name>.png` and (with `svg`) `.svg`; paths in the returned block are
    relative to the report root (folder's parent). Pictures (the qualitative grid) get no SVG:
    it would only wrap the same pixels, at several times the size."""
    rc = {"svg.hashsalt": "mmif-report", "svg.fonttype": "path"}
    # now, or with the report's other figures at its end (report.figure_files)
    save_png_svg(fig, folder / f"{name}.png", folder / f"{name}.svg" if svg else None, rc, dpi)
    rel = folder.name
    return Figure(
        caption=caption, png=f"{rel}/{name}.png", svg=f"{rel}/{name}.svg" if svg else None
    )


def _colours(methods: list[str], baselines: list[str]) -> dict[str, str]:
    """One colour per method (tab10); beyond 10 methods colours would repeat and mislead, so
    every fusion method gets one colour. Baselines in grey."""
    cmap = matplotlib.colormaps["tab10"]
    others = [m for m in methods if m not in baselines]
    out = {m: cmap(i) if len(others) <= 10 else FUSION_COLOUR for i, m in enumerate(others)}
    out.update({b: BASELINE_COLOUR for b in baselines})
    return out


def plot_task_scores(
    summaries: dict[str, pd.DataFrame],
    runs: dict[str, dict[str, dict[int, SeedRun]]],
    scores: dict[str, list[str]],
    methods: list[str],
    baselines: list[str],
    folder: Path,
    ci_level: float,
    protocols: dict[str, str] | None = None,
) -> Figure | None:
    """Bars of the seed mean per method and headline score, error bars the t-interval, dots the
    seeds; protocols: task -> protocol named in the panel title."""
    protocols = protocols or {}
    panels = [(t, s) for t, ss in scores.items() for s in ss if not summaries[t].empty]
    if not panels:
        return None
    if len(methods) > MANY_METHODS:
        return _ranked_scores(
            summaries, runs, panels, methods, baselines, folder, ci_level, protocols
        )
    colours = _colours(methods, baselines)
    fig = MplFigure(
        figsize=(
            max(4.0, 0.55 * len(methods) + 1.5) * min(2, len(panels)),
            3.4 * math.ceil(len(panels) / 2),
        )
    )
    for k, (task, score) in enumerate(panels):
        ax = fig.add_subplot(math.ceil(len(panels) / 2), min(2, len(panels)), k + 1)
        sub = summaries[task][summaries[task]["score"] == score].set_index("method")
        shown = [m for m in methods if m in sub.index]
        x = np.arange(len(shown))
        means = sub.loc[shown, "mean"].to_numpy(float)
        low, high, _ = clip(
            sub.loc[shown, "ci_low"].to_numpy(float),
            sub.loc[shown, "ci_high"].to_numpy(float),
            bounds_of(score),
        )
        err = np.vstack([means - low, high - means])
        err = np.nan_to_num(err, nan=0.0)
        ax.bar(
            x,
            means,
            color=[colours[m] for m in shown],
            yerr=err,
            capsize=3,
            edgecolor="black",
            linewidth=0.5,
        )
        for i, m in enumerate(shown):
            vals = [r.scores.get(score, np.nan) for r in runs[task][m].values()]
            ax.scatter(np.full(len(vals), x[i]), vals, s=10, color="black", zorder=3)
        ax.set_xticks(x, shown, rotation=45, ha="right")
        ax.set_title(_with_protocol(f"{task}: {score}", protocols.get(task)), fontsize=9)
        ax.set_ylabel(score)
        ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    caption = (
        f"Task scores per method: bar = mean over seeds, error bar = {ci_level:.0%} t-interval over seeds "
        "(none with one seed; clipped to [0, 1]), dots = single seeds; baselines in grey."
    )
    return save_figure(fig, folder, "task_scores", caption)


def _ranked_scores(
    summaries: dict[str, pd.DataFrame],
    runs: dict[str, dict[str, dict[int, SeedRun]]],
    panels: list[tuple[str, str]],
    methods: list[str],
    baselines: list[str],
    folder: Path,
    ci_level: float,
    protocols: dict[str, str],
) -> Figure:
    """Many methods: one horizontal panel per task score, methods sorted by the seed mean
    (best at the top), dot = mean, line = t-interval over seeds, small dots = seeds; the sources
    in grey with a dotted line at their mean."""
    n = max(len(summaries[t][summaries[t]["score"] == s]) for t, s in panels)
    ncols = min(2, len(panels))
    nrows = math.ceil(len(panels) / ncols)
    fig = MplFigure(figsize=(5.6 * ncols, (0.2 * n + 1.2) * nrows))
    for k, (task, score) in enumerate(panels):
        ax = fig.add_subplot(nrows, ncols, k + 1)
        sub = summaries[task][summaries[task]["score"] == score]
        sub = sub.sort_values("mean", ascending=True, kind="stable").set_index("method")
        shown = list(sub.index)
        y = np.arange(len(shown))
        means = sub["mean"].to_numpy(float)
        low, high, _ = clip(
            sub["ci_low"].to_numpy(float), sub["ci_high"].to_numpy(float), bounds_of(score)
        )
        colours = [BASELINE_COLOUR if m in baselines else FUSION_COLOUR for m in shown]
        ax.hlines(y, np.nan_to_num(low, nan=means), np.nan_to_num(high, nan=means),
                  colors=colours, linewidth=1.5)  # fmt: skip
        ax.scatter(means, y, c=colours, s=14, zorder=3)
        for i, m in enumerate(shown):
            vals = [r.scores.get(score, np.nan) for r in runs[task][m].values()]
            ax.scatter(vals, np.full(len(vals), y[i]), s=3, color="black", alpha=0.5, zorder=4)
        for b in baselines:
            if b in sub.index:
                ax.axvline(sub.loc[b, "mean"], color=BASELINE_COLOUR, linestyle=":", linewidth=1)
        ax.set_yticks(y, shown, fontsize=6)
        ax.set_ylim(-0.7, len(shown) - 0.3)
        ax.set_xlabel(score, fontsize=8)
        ax.tick_params(axis="x", labelsize=7)
        ax.grid(axis="x", alpha=0.3)
        ax.set_title(_with_protocol(f"{task}: {score}", protocols.get(task)), fontsize=9)
    fig.tight_layout()
    caption = (
        f"Task scores per method, sorted (best at the top): dot = mean over seeds, line = {ci_level:.0%} "
        "t-interval over seeds (clipped to [0, 1]), small dots = single seeds; the sources in grey, "
        "dotted lines at their means. The differences with their tests are in the ranking tables."
    )
    return save_figure(fig, folder, "task_scores", caption)


def _heatmap(
    ax,
    values: np.ndarray,
    labels: np.ndarray,
    rows: list[str],
    cols: list[str],
    vmin=0.0,
    vmax=1.0,
    cmap="viridis",
    fontsize: float = 7,
):
    im = ax.imshow(values, aspect="auto", cmap=cmap, vmin=vmin, vmax=vmax)
    ax.set_xticks(np.arange(len(cols)), cols, rotation=45, ha="right")
    ax.set_yticks(np.arange(len(rows)), rows)
    for i in range(values.shape[0]):
        for j in range(values.shape[1]):
            v = values[i, j]
            colour = "white" if not np.isfinite(v) or v < (vmin + vmax) / 2 else "black"
            ax.text(j, i, labels[i, j], ha="center", va="center", fontsize=fontsize, color=colour)
    return im


def _with_protocol(title: str, protocol: str | None) -> str:
    return f"{title} [protocol {protocol}]" if protocol else title


def plot_per_class(
    table: pd.DataFrame,
    task: str,
    key: str,
    folder: Path,
    protocol: str | None = None,
    labels: pd.DataFrame | None = None,
    note: str = "",
) -> Figure | None:
    """Heatmap method x class of the per-class AP50 or IoU (mean over seeds); labels: the
    cells' text (rounded by the precision rule), the values with 3 significant digits if None;
    note: appended to the caption (e.g. which methods a selection shows)."""
    if table.empty or table.shape[1] <= 1:
        return None
    classes = [c for c in table.columns if c != "method"]
    values = table[classes].to_numpy(float)
    labels = (
        labels[classes].to_numpy(object)
        if labels is not None
        else np.vectorize(lambda v: fmt(v, 3))(values)
    )
    fig = MplFigure(figsize=(max(5.0, 0.8 * len(classes) + 2.5), max(2.5, 0.4 * len(table) + 1.5)))
    ax = fig.add_subplot(1, 1, 1)
    im = _heatmap(ax, values, labels, list(table["method"]), classes)
    fig.colorbar(im, ax=ax, label=key)
    ax.set_title(_with_protocol(f"{task}: per-class {key} (mean over seeds)", protocol), fontsize=9)
    fig.tight_layout()
    return save_figure(
        fig,
        folder,
        f"{task}_per_class",
        f"Per-class {key} of the {task} task, mean over seeds." + (f" {note}" if note else ""),
    )


def normalise_metrics(fusion: pd.DataFrame, metrics: list[str]) -> np.ndarray:
    """Min-max scale each metric over the methods to [0, 1], 1 = best (flipped where lower is
    better); a metric equal for all methods maps to 0.5."""
    out = np.full((len(fusion), len(metrics)), np.nan)
    for j, m in enumerate(metrics):
        col = fusion[m].to_numpy(float)
        lo, hi = (
            np.nanmin(col) if np.isfinite(col).any() else np.nan,
            np.nanmax(col) if np.isfinite(col).any() else np.nan,
        )
        if not np.isfinite(lo):
            continue
        scaled = np.full_like(col, 0.5) if hi == lo else (col - lo) / (hi - lo)
        out[:, j] = 1.0 - scaled if m in LOWER_IS_BETTER and hi != lo else scaled
    return out


def plot_fusion_heatmap(
    fusion: pd.DataFrame,
    metrics: list[str],
    convention: str,
    folder: Path,
    labels: np.ndarray | None = None,
) -> Figure | None:
    """Heatmap method x metric, colour normalised per metric; labels: the means' text (rounded
    by the precision rule), 3 significant digits if None.

    Rows are sorted by the mean normalised value over the metrics (best at the top); with many
    methods the columns are ordered by hierarchical clustering (average linkage on 1 - Spearman's
    rho between metrics over the methods), so metrics that rank the methods alike sit together.
    """
    if fusion.empty or not metrics:
        return None
    norm = normalise_metrics(fusion, metrics)
    if labels is None:
        labels = np.vectorize(lambda v: fmt(v, 3))(fusion[metrics].to_numpy(float))
    with np.errstate(all="ignore"):
        overall = np.nanmean(np.where(np.isfinite(norm), norm, np.nan), axis=1)
    rows = np.argsort(-np.nan_to_num(overall, nan=-1.0), kind="stable")
    many = len(fusion) > MANY_METHODS
    cols = metric_order(norm) if many else np.arange(len(metrics))
    norm, labels = norm[rows][:, cols], np.asarray(labels)[rows][:, cols]
    names = [metrics[j] for j in cols]
    row_h = 0.28 if many else 0.4
    fig = MplFigure(
        figsize=(max(5.0, 0.75 * len(names) + 2.5), max(2.5, row_h * len(fusion) + 1.6))
    )
    ax = fig.add_subplot(1, 1, 1)
    im = _heatmap(ax, norm, labels, list(fusion["method"].to_numpy()[rows]), names,
                  fontsize=6 if many else 7)  # fmt: skip
    fig.colorbar(im, ax=ax, label="normalised (1 = best)")
    ax.set_title(f"Fusion metrics ({convention} convention)")
    fig.tight_layout()
    caption = (
        f"Fusion metrics per method ({convention} convention): colour = value min-max normalised over "
        f"the methods per metric, 1 = best (lower is better for {', '.join(sorted(LOWER_IS_BETTER))}); "
        "numbers = raw means over the test images, at the precision their interval over the images supports. "
        "Rows sorted by the mean normalised value (best overall at the top)"
        + (
            "; columns ordered by clustering, so metrics that rank the methods alike sit together."
            if many
            else "."
        )
    )
    return save_figure(fig, folder, "fusion_metrics", caption)


def metric_order(norm: np.ndarray) -> np.ndarray:
    """Column order of a (methods, metrics) array by average-linkage clustering on
    1 - Spearman's rho between the columns (constant or empty columns last)."""
    from scipy.cluster.hierarchy import leaves_list, linkage
    from scipy.spatial.distance import squareform
    from scipy.stats import rankdata

    ok = [
        j
        for j in range(norm.shape[1])
        if np.nanstd(norm[:, j]) > 0 and np.isfinite(norm[:, j]).all()
    ]
    rest = [j for j in range(norm.shape[1]) if j not in ok]
    if len(ok) < 3:
        return np.arange(norm.shape[1])
    ranks = np.column_stack([rankdata(norm[:, j]) for j in ok])
    rho = np.corrcoef(ranks, rowvar=False)
    dist = np.clip(1.0 - rho, 0.0, 2.0)
    np.fill_diagonal(dist, 0.0)
    leaves = leaves_list(linkage(squareform(dist, checks=False), method="average"))
    return np.array([ok[i] for i in leaves] + rest)


def plot_correlations(
    fusion: pd.DataFrame,
    metrics: list[str],
    summaries: dict[str, pd.DataFrame],
    scores: dict[str, list[str]],
    correlations: pd.DataFrame,
    methods: list[str],
    baselines: list[str],
    folder: Path,
) -> list[Figure]:
    """For each task score, a panel per fusion metric: methods as points, Spearman's rho in the title."""
    figures = []
    if fusion.empty or not metrics:
        return figures
    colours = _colours(methods, baselines)
    fus = fusion.set_index("method")
    for task, names in scores.items():
        for score in names:
            means = summaries[task][summaries[task]["score"] == score].set_index("method")["mean"]
            shared = [m for m in methods if m in fus.index and m in means.index]
            if len(shared) < 2:
                continue
            ncols = min(4, len(metrics))
            nrows = math.ceil(len(metrics) / ncols)
            fig = MplFigure(figsize=(3.2 * ncols, 2.8 * nrows))
            for k, metric in enumerate(metrics):
                ax = fig.add_subplot(nrows, ncols, k + 1)
                x = fus.loc[shared, metric].to_numpy(float)
                y = means.loc[shared].to_numpy(float)
                ax.scatter(
                    x, y, c=[colours[m] for m in shared], edgecolor="black", linewidth=0.5, zorder=3
                )
                for xi, yi, m in zip(x, y, shared, strict=True):
                    ax.annotate(m, (xi, yi), fontsize=6, xytext=(2, 2), textcoords="offset points")
                row = correlations[
                    (correlations["task"] == task)
                    & (correlations["score"] == score)
                    & (correlations["metric"] == metric)
                ]
                rho_text, p = "n/a", np.nan
                if len(row):
                    r = row.iloc[0]
                    rho_text = rounded(
                        r["rho"], r.get("ci_low", np.nan), r.get("ci_high", np.nan), (-1.0, 1.0)
                    ).text()
                    p = r["p_value"]
                ax.set_title(f"{metric}: rho {rho_text}, p {p_text(p)}", fontsize=8)
                ax.tick_params(labelsize=7)
                ax.set_xlabel(metric, fontsize=7)
                if k % ncols == 0:
                    ax.set_ylabel(score, fontsize=7)
                ax.grid(alpha=0.3)
            fig.tight_layout()
            caption = (
                f"{task} {score} (mean over seeds) against each fusion metric, one point per method; "
                "rho = Spearman's rank correlation over the methods (scipy.stats.spearmanr) [95% interval, Fisher's z], "
                "p its two-sided p-value. "
                "A metric that predicts task gains ranks methods as the task does (rho near 1; near -1 for MSE, Nabf)."
            )
            figures.append(save_figure(fig, folder, f"correlation_{task}_{score}", caption))
    return figures


def _numeric_columns(df: pd.DataFrame, x: str | None) -> list[str]:
    return [c for c in df.columns if c != x and pd.api.types.is_numeric_dtype(df[c])]


def _x_column(df: pd.DataFrame) -> str | None:
    for name in ("epoch", "step", "iteration", "iter"):
        if name in df.columns:
            return name
    return None


def plot_task_curves(
    task: str,
    runs: dict[str, dict[int, SeedRun]],
    methods: list[str],
    baselines: list[str],
    folder: Path,
    protocol: str | None = None,
) -> Figure | None:
    """Training curves (curves.csv) per method: mean over seeds, band = min..max over seeds.
    Under frozen nothing is trained per method (empty curves): no figure."""
    curves: dict[str, list[pd.DataFrame]] = {}
    for m in methods:
        for run in runs.get(m, {}).values():
            path = run.file("curves.csv")
            if path is not None:
                df = read_csv(path, f"mmif {task}")
                if len(df):
                    curves.setdefault(m, []).append(df)
    if not curves:
        return None
    columns: list[str] = []
    for dfs in curves.values():
        for df in dfs:
            columns += [c for c in _numeric_columns(df, _x_column(df)) if c not in columns]
    colours = _colours(methods, baselines)
    ncols = min(3, len(columns))
    nrows = math.ceil(len(columns) / ncols)
    fig = MplFigure(figsize=(4.2 * ncols, 3.0 * nrows))
    for k, col in enumerate(columns):
        ax = fig.add_subplot(nrows, ncols, k + 1)
        for m, dfs in curves.items():
            frames = []
            for df in dfs:
                if col not in df.columns:
                    continue
                xcol = _x_column(df)
                x = df[xcol] if xcol else pd.Series(np.arange(len(df)))
                # epochs without a value (e.g. val mIoU under `val_every` > 1) are left out
                frames.append(pd.Series(df[col].to_numpy(float), index=x.to_numpy()).dropna())
            frames = [f for f in frames if len(f)]
            if not frames:
                continue
            stacked = pd.concat(frames, axis=1).sort_index()
            ax.plot(
                stacked.index,
                stacked.mean(axis=1),
                color=colours[m],
                label=m,
                linewidth=1.2,
                marker="." if len(stacked) < 4 else None,
            )
            if stacked.shape[1] > 1:
                ax.fill_between(
                    stacked.index,
                    stacked.min(axis=1),
                    stacked.max(axis=1),
                    color=colours[m],
                    alpha=0.15,
                )
        ax.set_title(col, fontsize=9)
        ax.set_xlabel("epoch", fontsize=8)
        ax.tick_params(labelsize=7)
        ax.grid(alpha=0.3)
    fig.axes[0].legend(fontsize=6, ncol=2)
    if protocol:
        fig.suptitle(f"{task} training curves [protocol {protocol}]", fontsize=9)
    fig.tight_layout()
    return save_figure(
        fig,
        folder,
        f"{task}_curves",
        f"{task} training curves (curves.csv): line = mean over seeds, band = min to max over seeds.",
    )


def plot_loss_curve(method: str, curve: pd.DataFrame, source: str, folder: Path) -> Figure | None:
    """A fusion method's training loss curve: every numeric column against epoch/step (or row)."""
    if curve.empty:
        return None
    xcol = _x_column(curve)
    columns = _numeric_columns(curve, xcol)
    if not columns:
        return None
    x = curve[xcol].to_numpy() if xcol else np.arange(len(curve))
    ncols = min(3, len(columns))
    nrows = math.ceil(len(columns) / ncols)
    fig = MplFigure(figsize=(4.2 * ncols, 3.0 * nrows))
    for k, col in enumerate(columns):
        ax = fig.add_subplot(nrows, ncols, k + 1)
        ax.plot(x, curve[col].to_numpy(float), linewidth=1.2)
        ax.set_title(col, fontsize=9)
        ax.set_xlabel(xcol or "row", fontsize=8)
        ax.tick_params(labelsize=7)
        ax.grid(alpha=0.3)
    fig.tight_layout()
    return save_figure(
        fig, folder, f"{method}_loss_curve", f"{method} fusion training loss ({source})."
    )


def plot_differences(
    comparisons: pd.DataFrame,
    methods: list[str],
    baselines: list[str],
    folder: Path,
    ci_level: float,
    protocols: dict[str, str] | None = None,
) -> Figure | None:
    """Forest plot: each method's difference to each baseline with its interval (seeds and test
    images), sorted (largest gain at the top), one panel per task and baseline; filled =
    significant, hollow = not."""
    if comparisons.empty:
        return None
    protocols = protocols or {}
    panels = list(comparisons.groupby(["task", "baseline"], sort=False))
    colours = _colours(methods, baselines)
    ncols = min(2, len(panels))
    nrows = math.ceil(len(panels) / ncols)
    n = comparisons["method"].nunique()
    height = max(2.4, (0.32 if n <= MANY_METHODS else 0.19) * n + 1.2)
    fig = MplFigure(figsize=(4.6 * ncols, height * nrows))
    for k, ((task, baseline), group) in enumerate(panels):
        ax = fig.add_subplot(nrows, ncols, k + 1)
        g = group.sort_values("delta", ascending=False, kind="stable").set_index("method")
        order = list(g.index)
        y = np.arange(len(order))[::-1]
        bounds = difference_bounds(bounds_of(str(g["score"].iloc[0])))
        for yi, (m, row) in zip(y, g.iterrows(), strict=True):
            low, high, _ = clip(row["ci_low"], row["ci_high"], bounds)
            ax.plot([low, high], [yi, yi], color=colours[m], linewidth=2)
            ax.scatter(
                [row["delta"]],
                [yi],
                s=30,
                zorder=3,
                edgecolor=colours[m],
                facecolor=colours[m] if row["significant"] else "white",
            )
        ax.axvline(0.0, color="black", linewidth=0.8)
        ax.set_yticks(y, order, fontsize=7 if n <= MANY_METHODS else 6)
        ax.set_ylim(-0.7, len(order) - 0.3)
        score = str(g["score"].iloc[0])
        ax.set_xlabel(f"{score} difference to {baseline}", fontsize=8)
        ax.set_title(
            _with_protocol(f"{task}: minus {baseline}", protocols.get(str(task))), fontsize=9
        )
        ax.tick_params(axis="x", labelsize=7)
        ax.grid(axis="x", alpha=0.3)
    fig.tight_layout()
    caption = (
        f"Difference of each method to each baseline, sorted (largest at the top): dot = difference of seed means, line = {ci_level:.0%} "
        "interval over seeds and test images (clipped to [-1, 1]); filled = significant. Under frozen and finetune the "
        "difference is taken within each seed's shared task model."
    )
    return save_figure(fig, folder, "differences", caption)
