"""The report with 42 methods (the two sources and 40 fused ones, as after `mmif external add` of
a results zoo): every method is ranked, long displays show a selection and say so (their CSV
keeps every method), the plots stay a readable size and the HTML stays small.

The results tree is fake (tests/report/conftest.py): method quality is set by its weight, so
the ranking must follow it roughly; the test checks the report's shape, not the numbers.
"""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd
import pytest
from PIL import Image

from report.plots import DPI
from report.ranking import BOTTOM, MANY_METHODS, TOP
from tests.report.conftest import build_fake_report

N_FUSED = 40
SOURCES = ("vis", "ir")
#: a figure taller or wider than this (pixels) is not read on a screen
MAX_SIDE_PX = 4000


def _quality() -> dict[str, float]:
    q = {"vis": 0.45, "ir": 0.4}
    for i in range(N_FUSED):
        q[f"weighted_{i / (N_FUSED - 1):.4f}"] = 0.3 + 0.6 * i / (N_FUSED - 1)
    return q


@pytest.fixture(scope="module")
def scale_report(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("scale")
    _, out = build_fake_report(
        root,
        _quality(),
        bootstrap_samples=100,
        n_grid_images=2,
        seeds=(0, 1),
        n_images=12,
        protocol="frozen",
        jitter=0.03,
        fusion_metrics=("EN", "SF", "AG", "SSIM", "VIF", "MI"),
    )
    return out


def _md_rows(path: Path) -> list[str]:
    """The data rows of a Markdown table file (after the header and its rule)."""
    lines = [line for line in path.read_text().splitlines() if line.startswith("|")]
    return lines[2:]


def test_every_method_is_ranked_per_task(scale_report):
    n = N_FUSED + len(SOURCES)
    best = pd.read_csv(scale_report / "tables" / "best_methods.csv")
    for task in ("detect", "segment"):
        ranking = pd.read_csv(scale_report / "tables" / f"ranking_{task}.csv")
        assert len(ranking) == n and sorted(ranking["rank"]) == list(range(1, n + 1))
        # the order of the tested statistic's seed means (best_methods.csv), best first
        assert list(ranking["method"]) == list(best.loc[best["task"] == task, "method"])
        assert ranking["group"].iloc[0] == "best" and set(ranking["group"]) <= {
            "best",
            "indistinguishable",
            "worse",
        }
        # the worst weights are clearly worse than the best; the sources are in the table
        worst = ranking.set_index("method").loc["weighted_0.0000"]
        assert worst["group"] == "worse" and worst["delta_to_best"] < 0
        assert set(SOURCES) <= set(ranking["method"])
        # the Markdown table shows every method: the ranking is the one long table kept whole
        rows = _md_rows(scale_report / "tables" / f"ranking_{task}.md")
        assert len(rows) == n
        assert "(source)" in "".join(rows)


def test_long_tables_show_a_selection_and_say_so(scale_report):
    n = N_FUSED + len(SOURCES)
    md = (scale_report / "report.md").read_text()
    for task in ("detect", "segment"):
        full = pd.read_csv(scale_report / "tables" / f"{task}_per_class.csv")
        assert len(full) == n
        rows = _md_rows(scale_report / "tables" / f"{task}_per_class.md")
        assert n > MANY_METHODS and len(rows) <= TOP + BOTTOM + len(SOURCES)
        shown = {r.split("|")[1].strip() for r in rows}
        assert set(SOURCES) <= shown
        ranking = pd.read_csv(scale_report / "tables" / f"ranking_{task}.csv")
        assert set(ranking["method"][:TOP]) <= shown  # the best ones
        assert set(ranking["method"][-BOTTOM:]) <= shown  # and the worst
        assert f"Showing {len(rows)} of {n} methods" in md
        assert f"every method is in {task}_per_class.csv" in md
        # the per-class heatmap shows the same selection: one row per shown method, and says so
        key = {"detect": "AP50", "segment": "IoU"}[task]
        assert (
            f"Per-class {key} of the {task} task, mean over seeds. Showing {len(rows)} of {n}" in md
        )
        with Image.open(scale_report / "plots" / f"{task}_per_class.png") as im:
            height = im.size[1]
        assert height < DPI * (0.4 * n + 1.5)  # shorter than a heatmap of every method's row
    sig = pd.read_csv(scale_report / "tables" / "significance.csv")
    assert set(sig["method"]) >= set(_quality()) - set(SOURCES)  # the CSV keeps every method
    assert len(_md_rows(scale_report / "tables" / "significance.md")) < len(sig)


def test_plots_stay_readable_and_the_html_small(scale_report):
    plots = scale_report / "plots"
    for png in plots.glob("*.png"):
        with Image.open(png) as im:
            assert max(im.size) <= MAX_SIDE_PX, (png.name, im.size)
    # the forest plot of differences to the baselines and the fusion-metric heatmap exist
    assert (plots / "differences.png").is_file() and (plots / "fusion_metrics.png").is_file()
    # the qualitative grid shows a selection: sources + the selected fused methods, not 42
    with Image.open(plots / "qualitative_grid.png") as im:
        width, _ = im.size
    with Image.open(plots / "task_scores.png") as im:
        assert im.size[1] > im.size[0]  # one row per method: a tall, sorted panel
    assert width < 2 * MAX_SIDE_PX // 3
    html = scale_report / "report.html"
    assert html.stat().st_size < 15 * 2**20
    text = html.read_text()
    # the metric-versus-task correlation is over every method
    corr = pd.read_csv(scale_report / "tables" / "correlations.csv")
    assert (corr["n_methods"] == N_FUSED + len(SOURCES)).all()
    # every in-page link resolves
    ids = set(re.findall(r' id="([^"]+)"', text))
    assert set(re.findall(r'href="#([^"]+)"', text)) <= ids
