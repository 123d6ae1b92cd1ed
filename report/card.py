"""The one-page results card: results/report/card.png (1200 px wide) and card.svg.

Sized to paste into a paper or a chat: per task, every method's score with its interval (sorted,
best first; with many methods the top and bottom few and the sources), the methods
indistinguishable from the best shaded, the fusion-versus-sources verdict and the known effects;
above them the run facts (dataset, protocol, seeds, fusion-metric convention, training time).
Every number goes through the report's precision rule (`report.precision`), and the card is
drawn from the same `TaskFindings` as the report's findings section, so the two never disagree.
"""

from __future__ import annotations

import math
import textwrap
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure as MplFigure

from report.figure_files import save_png_svg
from report.findings import TaskFindings, names
from report.precision import bounds_of, clip, rounded

#: width in pixels of card.png (figure inches x DPI)
WIDTH_PX = 1200
DPI = 100
#: methods drawn per task before the card lists the top and bottom few only
MAX_ROWS = 16
TOP_ROWS = 10
BOTTOM_ROWS = 3
BASELINE_COLOUR = "#757575"
FUSION_COLOUR = "#1f77b4"
BEST_SHADE = "#fde9a9"
TIE_SHADE = "#fff6d6"
YES_COLOUR = "#1b7f3b"
NO_COLOUR = "#444444"
BASE_FONT = 11


@dataclass(frozen=True)
class CardRow:
    """One method of a panel; text: its score and interval as the report prints them."""

    method: str
    mean: float
    low: float
    high: float
    text: str
    baseline: bool = False
    best: bool = False
    tie: bool = False
    winner: bool = False


@dataclass
class CardPanel:
    """One task: rows sorted best first; `hidden` methods between the shown ones ("... N more")."""

    title: str
    subtitle: str
    rows: list[CardRow]
    verdict: str
    verdict_yes: bool | None
    effects: str = ""
    predictor: str = ""
    bounds: tuple[float, float] | None = (0.0, 1.0)
    baselines: dict[str, float] = field(default_factory=dict)
    n_methods: int = 0


def card_panel(f: TaskFindings, summary: pd.DataFrame, baselines: list[str]) -> CardPanel:
    """A panel from a task's findings and its score table (`tables.task_summary`)."""
    scores = summary[summary["score"] == f.score].copy()
    scores = scores.sort_values("mean", ascending=False, kind="stable")
    winners = {v.method for v in f.winners}
    tie = set(f.indistinguishable) if f.tested else set()
    bounds = bounds_of(f.score)
    rows = [
        CardRow(
            method=str(r["method"]),
            mean=float(r["mean"]),
            low=float(r["ci_low"]),
            high=float(r["ci_high"]),
            text=rounded(r["mean"], r["ci_low"], r["ci_high"], bounds).text(),
            baseline=r["method"] in baselines,
            best=r["method"] == f.best,
            tie=r["method"] in tie,
            winner=r["method"] in winners,
        )
        for _, r in scores.iterrows()
    ]
    sources = " and ".join(f.baselines) or "the sources"
    if not f.tested:
        verdict, yes = "Untested (one seed): no significance claims.", None
    elif f.missing_baselines:
        verdict, yes = f"Fusion vs sources: not tested (no {', '.join(f.missing_baselines)}).", None
    elif not f.fusion_methods:
        verdict, yes = "No fusion method in this run.", None
    elif f.winners:
        verdict = (
            f"Fusion beats both sources: YES. Significantly better than {sources}: "
            f"{names([v.method for v in f.winners], 6)} (\u2605)."
        )
        yes = True
    else:
        verdict = f"Fusion beats both sources: NO. No fusion method is significantly better than {sources}."
        yes = False
    if f.tested and not f.any_significant:
        verdict += " Nothing is significant."
    effects = ""
    if f.effects:
        found = sum(bool(e["detected"]) for e in f.effects)
        missed = [str(e["effect"]) for e in f.effects if not bool(e["detected"])]
        effects = f"Known effects detected: {found} of {len(f.effects)}" + (
            f" (missed: {'; '.join(missed)})" if missed else ""
        )
    predictor = ""
    if f.predictor is not None:
        p = f.predictor
        r = rounded(p["rho"], p["ci_low"], p["ci_high"], (-1.0, 1.0))
        predictor = (
            f"Best-predicting fusion metric: {p['metric']}, rho {r.text()} "
            f"({p['n_methods']} methods{', few' if p['n_methods'] < 10 else ''})"
        )
    seeds = f"{f.n_seeds} seed{'s' if f.n_seeds != 1 else ''}"
    images = f", {f.n_images} test images" if f.n_images else ""
    return CardPanel(
        title=f"{f.title}: {f.score}",
        subtitle=f"protocol {f.protocol}; {seeds}{images}",
        rows=rows,
        verdict=verdict,
        verdict_yes=yes,
        effects=effects,
        predictor=predictor,
        bounds=bounds,
        baselines={r.method: r.mean for r in rows if r.baseline},
        n_methods=len(rows),
    )


def shown_rows(rows: list[CardRow], limit: int = MAX_ROWS) -> list[CardRow | int]:
    """The rows to draw: all of them up to `limit`; beyond, the top `TOP_ROWS`, the bottom
    `BOTTOM_ROWS` and every baseline, with the number of methods left out in each gap (int)."""
    if len(rows) <= limit:
        return list(rows)
    keep = set(range(TOP_ROWS)) | set(range(len(rows) - BOTTOM_ROWS, len(rows)))
    keep |= {i for i, r in enumerate(rows) if r.baseline or r.best}
    out: list[CardRow | int] = []
    gap = 0
    for i, r in enumerate(rows):
        if i in keep:
            if gap:
                out.append(gap)
                gap = 0
            out.append(r)
        else:
            gap += 1
    if gap:
        out.append(gap)
    return out


def _wrap(text: str, width: int) -> str:
    return "\n".join(textwrap.wrap(text, width)) if text else ""


def draw_card(title: str, facts: list[str], panels: list[CardPanel], footer: str) -> MplFigure:
    """The card as a matplotlib figure, WIDTH_PX / DPI inches wide."""
    width_in = WIDTH_PX / DPI
    ncols = 1 if len(panels) <= 1 else 2
    nrows = max(1, math.ceil(len(panels) / ncols))
    shown = [shown_rows(p.rows) for p in panels]
    max_rows = max((len(s) for s in shown), default=1)
    wrap = 60 if ncols == 2 else 120
    text_lines = max(
        (
            len(_wrap(p.verdict, wrap).splitlines())
            + len(_wrap(p.effects, wrap).splitlines())
            + len(_wrap(p.predictor, wrap).splitlines())
            for p in panels
        ),
        default=1,
    )
    fact_text = _wrap(" \u00b7 ".join(facts), 150)
    header_in = 0.75 + 0.22 * len(fact_text.splitlines())
    plot_in = 0.3 * max_rows + 0.9
    verdict_in = 0.22 * text_lines + 0.25
    panel_in = 0.55 + plot_in + verdict_in
    footer_text = _wrap(footer, 165)
    footer_in = 0.2 * len(footer_text.splitlines()) + 0.25
    height_in = header_in + nrows * panel_in + footer_in
    fig = MplFigure(figsize=(width_in, height_in), facecolor="white")

    def y(inches_from_top: float) -> float:
        return 1.0 - inches_from_top / height_in

    fig.text(0.02, y(0.15), title, fontsize=18, fontweight="bold", va="top")
    fig.text(0.02, y(0.6), fact_text, fontsize=BASE_FONT - 1, va="top", color="#333333")
    for k, panel in enumerate(panels):
        row, col = divmod(k, ncols)
        top = header_in + row * panel_in
        left = 0.02 + col * (1.0 / ncols)
        _draw_panel(fig, panel, shown[k], left, 1.0 / ncols - 0.03, top, plot_in, height_in, wrap)
    fig.text(0.02, footer_in / height_in - 0.12 / height_in, footer_text, fontsize=BASE_FONT - 2,
             va="top", color="#555555")  # fmt: skip
    return fig


def _draw_panel(
    fig: MplFigure,
    panel: CardPanel,
    rows: list[CardRow | int],
    left: float,
    width: float,
    top_in: float,
    plot_in: float,
    height_in: float,
    wrap: int,
) -> None:
    fig.text(
        left, 1 - (top_in + 0.1) / height_in, panel.title, fontsize=14, fontweight="bold", va="top"
    )
    fig.text(left, 1 - (top_in + 0.38) / height_in, panel.subtitle, fontsize=BASE_FONT - 1,
             va="top", color="#555555")  # fmt: skip
    # name column | forest plot | value column
    name_w, value_w = 0.2 * width, 0.3 * width
    ax_left = left + name_w
    ax_w = width - name_w - value_w
    ax_bottom = 1 - (top_in + 0.55 + plot_in - 0.35) / height_in
    ax_h = (plot_in - 0.45) / height_in
    ax = fig.add_axes((ax_left, ax_bottom, ax_w, ax_h))
    n = len(rows)
    ys = np.arange(n)[::-1].astype(float)
    xs_all = [v for r in rows if isinstance(r, CardRow) for v in (r.low, r.high, r.mean)]
    xs_all = [v for v in xs_all if np.isfinite(v)]
    lo_b, hi_b = panel.bounds if panel.bounds else (-math.inf, math.inf)
    xmin = max(lo_b, min(xs_all, default=0.0))
    xmax = min(hi_b, max(xs_all, default=1.0))
    pad = 0.06 * max(xmax - xmin, 1e-6)
    ax.set_xlim(max(lo_b, xmin - pad) if np.isfinite(lo_b) else xmin - pad, xmax + pad)
    ax.set_ylim(-0.6, n - 0.4)
    for value in panel.baselines.values():
        ax.axvline(value, color=BASELINE_COLOUR, linestyle=":", linewidth=1.0, zorder=1)
    labels = []
    for yi, r in zip(ys, rows, strict=True):
        if isinstance(r, int):
            labels.append(f"\u2026 {r} more")
            continue
        if r.best or r.tie:
            ax.axhspan(yi - 0.5, yi + 0.5, color=BEST_SHADE if r.best else TIE_SHADE, zorder=0)
        colour = BASELINE_COLOUR if r.baseline else FUSION_COLOUR
        low, high, _ = clip(r.low, r.high, panel.bounds)
        if np.isfinite(low) and np.isfinite(high):
            ax.plot([low, high], [yi, yi], color=colour, linewidth=2.2, zorder=2)
        ax.scatter([r.mean], [yi], s=46, color=colour, zorder=3,
                   marker="s" if r.baseline else "o", edgecolor="black", linewidth=0.5)  # fmt: skip
        labels.append(r.method + (" \u2605" if r.winner else ""))
        tx = ax.get_yaxis_transform()
        ax.text(1.03, yi, r.text, transform=tx, fontsize=BASE_FONT - 1, va="center", ha="left",
                fontweight="bold" if r.best else "normal")  # fmt: skip
    ax.set_yticks(ys, labels, fontsize=BASE_FONT)
    for tick, r in zip(ax.get_yticklabels(), rows, strict=True):
        if isinstance(r, CardRow) and r.best:
            tick.set_fontweight("bold")
        if isinstance(r, CardRow) and r.baseline:
            tick.set_color(BASELINE_COLOUR)
        if isinstance(r, int):
            tick.set_style("italic")
            tick.set_color("#777777")
    ax.tick_params(axis="x", labelsize=BASE_FONT - 2)
    ax.tick_params(axis="y", length=0)
    ax.grid(axis="x", alpha=0.3)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    # verdict, effects, predictor below the plot
    text_top = top_in + 0.55 + plot_in
    verdict = _wrap(panel.verdict, wrap)
    colour = YES_COLOUR if panel.verdict_yes else NO_COLOUR
    fig.text(left, 1 - text_top / height_in, verdict, fontsize=BASE_FONT, va="top", color=colour,
             fontweight="bold")  # fmt: skip
    extra = [t for t in (_wrap(panel.effects, wrap), _wrap(panel.predictor, wrap)) if t]
    if extra:
        offset = 0.22 * len(verdict.splitlines()) + 0.05
        fig.text(left, 1 - (text_top + offset) / height_in, "\n".join(extra), fontsize=BASE_FONT - 1,
                 va="top", color="#333333")  # fmt: skip


def save_card(fig: MplFigure, folder: Path, name: str = "card") -> tuple[Path, Path]:
    """Write `<folder>/<name>.png` (WIDTH_PX wide) and `.svg` with fixed metadata (the same
    input gives the same bytes)."""
    png, svg = folder / f"{name}.png", folder / f"{name}.svg"
    rc = {"svg.hashsalt": "mmif-card", "svg.fonttype": "path"}
    # now, or with the report's other figures at its end (report.figure_files)
    save_png_svg(fig, png, svg, rc, DPI, facecolor="white")
    return png, svg
