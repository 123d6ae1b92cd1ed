"""Qualitative grid: a few test images as infrared, visible and every method's fusion, with the
detections of each method's detector drawn on its own images.

Rows are test images chosen with `ReportConfig.seed`; columns are the two sources (with the
detections of the `ir` / `vis` baseline detectors when those exist) and then each fused
method. Predicted boxes (score >= `conf_threshold`, from the predictions.json of seed
`grid_seed_run`, else the lowest seed) are solid and coloured by class; ground-truth boxes are
dashed white.
"""

from __future__ import annotations

import logging
from pathlib import Path

import matplotlib
import numpy as np
from matplotlib.figure import Figure as MplFigure
from matplotlib.patches import Rectangle

from mmif.errors import UserError
from mmif.io import ImageError, read_image
from mmif.layout import Manifest, list_pairs
from report.config import ReportConfig
from report.document import Figure
from report.loading import DetectionPredictions, SeedRun
from report.plots import save_figure

log = logging.getLogger(__name__)

#: source columns and the method names whose detectors saw exactly those images
SOURCE_COLUMNS = (("infrared", "ir"), ("visible", "vis"))


def source_labels(manifest: Manifest | None) -> tuple[str, str]:
    """Column titles of the two sources: the modality names a prepared medical set records
    (e.g. "MRI", "PET"), else "infrared" and "visible".

    A set whose subsets pair different modalities (MRI-PET next to MRI-SPECT) joins the names
    with "/".
    """
    default = (SOURCE_COLUMNS[0][0], SOURCE_COLUMNS[1][0])
    if manifest is None:
        return default
    modalities = (manifest.extra.get("layout") or {}).get("modalities") or {}
    if not isinstance(modalities, dict) or not modalities:
        return default
    names = []
    for key in ("ir", "vis"):
        found = sorted(
            {str(m.get(key, "")).upper() for m in modalities.values() if isinstance(m, dict)}
        )
        if not found or "" in found:
            return default
        names.append("/".join(found))
    return names[0], names[1]


def choose_stems(stems: list[str], n: int, seed: int) -> list[str]:
    """`n` distinct stems drawn with `seed` (all when fewer), in sorted order."""
    if n >= len(stems):
        return sorted(stems)
    rng = np.random.default_rng(seed)
    return sorted(stems[i] for i in rng.choice(len(stems), size=n, replace=False))


def grid_predictions(
    runs: dict[str, dict[int, SeedRun]], seed: int
) -> dict[str, DetectionPredictions]:
    """method -> predictions of seed `seed` (else its lowest seed) where predictions.json exists."""
    out = {}
    for method, seeds in runs.items():
        run = seeds.get(seed) or seeds[min(seeds)]
        predictions = run.predictions
        if predictions is not None:
            out[method] = predictions
    return out


def _draw_boxes(ax, det, classes: list[str], conf: float) -> None:
    cmap = matplotlib.colormaps["tab10"]
    for _cls, x1, y1, x2, y2 in det.gt:
        ax.add_patch(
            Rectangle(
                (x1, y1),
                x2 - x1,
                y2 - y1,
                fill=False,
                edgecolor="white",
                linestyle="--",
                linewidth=0.8,
            )
        )
    for cls, score, x1, y1, x2, y2 in det.pred:
        if score < conf:
            continue
        colour = cmap(int(cls) % 10)
        ax.add_patch(
            Rectangle((x1, y1), x2 - x1, y2 - y1, fill=False, edgecolor=colour, linewidth=1.2)
        )
        name = classes[int(cls)] if 0 <= int(cls) < len(classes) else str(int(cls))
        ax.text(x1, y1, f"{name} {score:.2f}", fontsize=5, color="black", va="bottom",
                bbox={"facecolor": colour, "edgecolor": "none", "pad": 0.5, "alpha": 0.8})  # fmt: skip


def qualitative_grid(
    data_root: Path,
    fused_root: Path,
    methods: list[str],
    detect_runs: dict[str, dict[int, SeedRun]],
    cfg: ReportConfig,
    folder: Path,
) -> tuple[Figure | None, str]:
    """Build the grid; returns the figure (None when impossible) and a sentence for the report."""
    if cfg.n_grid_images == 0:
        return None, "The qualitative grid is switched off (n_grid_images = 0)."
    try:
        pairs = {p.stem: p for p in list_pairs(data_root, cfg.split)}
    except ImageError as exc:
        log.warning("qualitative grid: %s", exc)
        pairs = {}
    if not pairs:
        return None, f"Qualitative grid not available: no `{cfg.split}` pairs under {data_root}."
    stems = choose_stems(sorted(pairs), cfg.n_grid_images, cfg.seed)
    fused = [
        m
        for m in methods
        if m not in {s for _, s in SOURCE_COLUMNS} and (Path(fused_root) / m / cfg.split).is_dir()
    ]
    preds = grid_predictions(detect_runs, cfg.grid_seed_run)
    try:
        manifest = Manifest.load(data_root)
    except UserError as exc:
        log.warning("qualitative grid: %s; source columns titled infrared / visible", exc)
        manifest = None
    labels = source_labels(manifest)
    columns = [(labels[0], "ir"), (labels[1], "vis")] + [(m, m) for m in fused]

    first = read_image(pairs[stems[0]].ir)
    aspect = first.shape[0] / first.shape[1]
    width = 2.3
    fig = MplFigure(figsize=(width * len(columns), width * aspect * len(stems) + 0.4))
    for r, stem in enumerate(stems):
        for c, (label, name) in enumerate(columns):
            ax = fig.add_subplot(len(stems), len(columns), r * len(columns) + c + 1)
            ax.set_xticks([])
            ax.set_yticks([])
            if r == 0:
                ax.set_title(label, fontsize=8)
            if c == 0:
                ax.set_ylabel(stem, fontsize=7)
            if name in ("ir", "vis"):
                path = getattr(pairs[stem], name)
            else:
                path = Path(fused_root) / name / cfg.split / f"{stem}.png"
            if not path.is_file():
                ax.text(
                    0.5,
                    0.5,
                    "missing",
                    ha="center",
                    va="center",
                    transform=ax.transAxes,
                    fontsize=7,
                )
                continue
            img = read_image(path)
            ax.imshow(
                img,
                cmap="gray" if img.ndim == 2 else None,
                vmin=0,
                vmax=255,
                interpolation="antialiased",
            )
            pred = preds.get(name)
            if pred is not None and stem in pred.stems:
                _draw_boxes(ax, pred.by_stem()[stem], pred.classes, cfg.conf_threshold)
    fig.tight_layout(pad=0.3)
    n_det = sum(1 for _, name in columns if name in preds)
    caption = (
        f"Qualitative comparison on {len(stems)} {cfg.split} images chosen with seed {cfg.seed}: {labels[0]}, "
        f"{labels[1]} and each method's fusion. "
        + (
            f"Boxes: detections with score >= {cfg.conf_threshold:g} of each column's own detector (seed "
            f"{cfg.grid_seed_run}, else its lowest seed), coloured by class; dashed white = ground truth."
            if n_det
            else "No detection predictions available to draw."
        )
    )
    # a picture: an SVG would only wrap the same pixels (2.2 MB beside a 1.6 MB PNG)
    figure = save_figure(fig, folder, "qualitative_grid", caption, svg=False)
    return figure, caption
