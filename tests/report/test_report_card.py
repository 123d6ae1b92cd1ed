"""The results card (report.card) and what the report promises about it and its numbers:
findings first, intervals inside their range, no more digits than the interval supports."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from report.card import (
    BOTTOM_ROWS,
    TOP_ROWS,
    WIDTH_PX,
    CardPanel,
    CardRow,
    draw_card,
    save_card,
    shown_rows,
)

#: "estimate [low, high]" in a display cell or sentence
INTERVAL = re.compile(r"([-+]?\d+(?:\.\d+)?) \[(-?\d+(?:\.\d+)?),\s(-?\d+(?:\.\d+)?)\]")


def _rows(n: int, baselines=("vis", "ir")) -> list[CardRow]:
    rows = [
        CardRow(
            f"m{i:02d}", 0.9 - 0.01 * i, 0.85 - 0.01 * i, 0.95 - 0.01 * i, f"{0.9 - 0.01 * i:.2f}"
        )
        for i in range(n)
    ]
    for k, b in enumerate(baselines):  # the sources somewhere in the middle
        i = n // 2 + k
        r = rows[i]
        rows[i] = CardRow(b, r.mean, r.low, r.high, r.text, baseline=True)
    rows[0] = CardRow(
        rows[0].method, rows[0].mean, rows[0].low, rows[0].high, rows[0].text, best=True
    )
    return rows


def test_all_rows_when_few():
    rows = _rows(8)
    assert shown_rows(rows) == rows


def test_top_bottom_and_sources_when_many():
    rows = _rows(42)
    shown = shown_rows(rows)
    kept = [r for r in shown if isinstance(r, CardRow)]
    gaps = [r for r in shown if isinstance(r, int)]
    assert kept[:TOP_ROWS] == rows[:TOP_ROWS] and kept[-BOTTOM_ROWS:] == rows[-BOTTOM_ROWS:]
    assert {"vis", "ir"} <= {r.method for r in kept}
    assert len(kept) + sum(gaps) == 42 and len(shown) <= 20


@pytest.mark.parametrize("n_methods", [6, 42])
def test_card_is_1200_px_wide_and_not_blank(tmp_path, n_methods):
    panel = CardPanel(
        title="Object detection: mAP50",
        subtitle="protocol frozen; 3 seeds, 64 test images",
        rows=_rows(n_methods),
        verdict="Fusion beats both sources: YES. Significantly better than vis and ir: m00 (\u2605).",
        verdict_yes=True,
        effects="Known effects detected: 2 of 2",
        baselines={"vis": 0.7, "ir": 0.6},
    )
    fig = draw_card("test: which fusion helps which task?", ["Dataset: test", "seeds 0, 1, 2"],
                    [panel, panel], "footer text")  # fmt: skip
    png, svg = save_card(fig, tmp_path)
    with Image.open(png) as im:
        assert im.width == WIDTH_PX
        assert 300 < im.height < 1400  # one page: 42 methods do not make it longer than 1400 px
        grey = np.asarray(im.convert("L"))
        assert (grey < 128).mean() > 0.005  # text and marks drawn
    assert svg.read_text().lstrip().startswith("<?xml")


def test_card_written_and_linked(varied_report):
    with Image.open(varied_report / "card.png") as im:
        assert im.width == WIDTH_PX
    assert (varied_report / "card.svg").is_file()
    md = (varied_report / "report.md").read_text()
    html = (varied_report / "report.html").read_text()
    assert "![card](card.png)" in md and "[SVG](card.svg)" in md
    assert '<figure id="fig-card"><img src="data:image/png;base64,' in html


def test_findings_come_first(varied_report):
    md = (varied_report / "report.md").read_text()
    html = (varied_report / "report.html").read_text()
    headings = re.findall(r"^## (.+)$", md, re.M)
    assert headings[:3] == ["Findings", "Results card", "About this run"]
    assert re.findall(r"<h2[^>]*>([^<]+)</h2>", html)[0] == "Findings"
    findings = md.split("## Findings", 1)[1].split("## Results card", 1)[0]
    assert "**Object detection**" in findings and "**Semantic segmentation**" in findings
    assert findings.count("Best: **coconet**") + findings.count("Highest mean: **coconet**") == 2
    assert "Fusion beats both sources:" in findings
    # every link of the page resolves to an element of the page
    ids = set(re.findall(r' id="([^"]+)"', html))
    links = re.findall(r'href="#([^"]+)"', html)
    assert links and set(links) <= ids


def _md_tables(folder: Path) -> dict[str, str]:
    return {p.stem: p.read_text() for p in sorted((folder / "tables").glob("*.md"))}


def test_no_printed_interval_leaves_its_range(varied_report):
    """Task scores, per-class values and differences of them: [0, 1] and [-1, 1]."""
    texts = _md_tables(varied_report)
    texts["report"] = (varied_report / "report.md").read_text()
    checked = 0
    for name, text in texts.items():
        if name.startswith(("fusion_metrics", "correlations")):
            continue  # other ranges, checked below
        for est, low, high in INTERVAL.findall(text):
            lo, hi = float(low), float(high)
            differences = name in ("significance", "best_methods", "sanity") or est.startswith(
                ("-", "+")
            )
            bound = (-1.0, 1.0) if differences or float(est) < 0 else (0.0, 1.0)
            if name == "report":
                bound = (-1.0, 1.0)
            assert bound[0] <= lo <= hi <= bound[1], (name, est, low, high)
            checked += 1
    assert checked > 50
    corr = texts["correlations"]
    for _, low, high in INTERVAL.findall(corr):
        assert -1.0 <= float(low) <= float(high) <= 1.0


def _decimals(text: str) -> int:
    return len(text.split(".")[1]) if "." in text else 0


def test_no_table_shows_more_digits_than_its_interval_supports(varied_report):
    """In every display table: an estimate and its interval share one decimal place, and at
    that place the printed half-width has two significant digits (not three or more) unless
    the range clipped an end."""
    checked = 0
    for name, text in _md_tables(varied_report).items():
        for est, low, high in INTERVAL.findall(text):
            d = _decimals(est)
            assert _decimals(low) == d == _decimals(high), (name, est, low, high)
            lo, hi = float(low), float(high)
            if lo in (0.0, -1.0) or hi == 1.0:
                continue  # clipped: the printed width is not the interval's
            assert round((hi - lo) / 2 * 10**d) <= 100, (name, est, low, high)
            checked += 1
        for est, half in re.findall(r"(-?\d+(?:\.\d+)?) ±\s(\d+(?:\.\d+)?)", text):
            d = _decimals(est)
            assert _decimals(half) == d and 10 <= round(float(half) * 10**d) <= 99, (
                name,
                est,
                half,
            )
            checked += 1
    assert checked > 50


def test_csv_files_keep_full_precision(varied_report):
    scores = pd.read_csv(varied_report / "tables" / "detect_scores.csv")
    md = (varied_report / "tables" / "detect_scores.md").read_text()
    mean = scores.loc[(scores["method"] == "coconet") & (scores["score"] == "mAP50"), "mean"].iloc[
        0
    ]
    assert len(repr(float(mean))) > 8  # not rounded
    assert repr(float(mean)) not in md


def test_summary_has_the_findings(varied_report):
    summary = json.loads((varied_report / "summary.json").read_text())
    f = summary["findings"]["segment"]
    assert f["best"] == "coconet" and f["tested"] is True
    assert f["best_ci_low"] <= f["best_value"] <= f["best_ci_high"]
    assert isinstance(f["fusion_beats_both_sources"], list)


def test_print_summary_follows_the_rounding_rule(varied_report, capsys):
    import importlib.util

    script = Path(__file__).resolve().parents[2] / "scripts" / "print_summary.py"
    spec = importlib.util.spec_from_file_location("print_summary", script)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.main([str(varied_report)]) == 0
    out = capsys.readouterr().out
    scores = pd.read_csv(varied_report / "tables" / "segment_scores.csv")
    row = scores[(scores["method"] == "coconet") & (scores["score"] == "mIoU")].iloc[0]
    from report.precision import UNIT, interval_text

    assert interval_text(row["mean"], row["ci_low"], row["ci_high"], UNIT) in out
    assert "best: coconet" in out and "fusion significantly better than both sources:" in out
    for est, low, high in INTERVAL.findall(out):
        assert _decimals(est) == _decimals(low) == _decimals(high)
        assert 0.0 <= float(low) <= float(high) <= 1.0
