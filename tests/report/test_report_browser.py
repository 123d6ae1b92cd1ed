"""The report in a real browser (headless Chromium; skipped when it is not installed): the
self-contained check of scripts/check_report_html.py on a built report, and a screenshot of the
findings section, which the reader sees first.

Install Chromium with `apt-get install chromium` (Debian/Ubuntu). Both tests together take
about 10 s on 2 cores.
"""

from __future__ import annotations

import importlib.util
import re
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "check_report_html.py"

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def check():
    spec = importlib.util.spec_from_file_location("check_report_html", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    if module.find_chromium(None) is None:
        pytest.skip("Chromium not installed (apt-get install chromium): no browser check")
    return module


def test_built_report_is_self_contained_in_chromium(check, varied_report, tmp_path, capsys):
    shot = tmp_path / "report.png"
    rc = check.main([str(varied_report / "report.html"), "--screenshot", str(shot)])
    out = capsys.readouterr().out
    assert rc == 0, out
    assert "the page requested nothing from any other host" in out
    n_img = int(re.search(r"(\d+) <img> elements", out).group(1))
    assert f"images decoded in the browser: {n_img} of {n_img}" in out and n_img >= 10


def test_a_corrupt_image_fails_the_check(check, tmp_path, capsys):
    page = tmp_path / "report.html"
    page.write_text(
        '<html><body><img src="data:image/png;base64,AAAAbroken" alt="x"></body></html>'
    )
    assert (
        check.main([str(page), "--screenshot", str(tmp_path / "s.png"), "--window-size", "400,300"])
        == 1
    )
    assert "images decoded in the browser: 0 of 1" in capsys.readouterr().out


class _Findings(HTMLParser):
    """Text of the Findings section of a dumped DOM (between its <h2> and the next <h2>)."""

    def __init__(self):
        super().__init__()
        self.inside = False
        self.text: list[str] = []
        self.items = 0

    def handle_starttag(self, tag, attrs):
        if tag == "h2":
            self.inside = dict(attrs).get("id") == "findings"
        elif tag == "li" and self.inside:
            self.items += 1

    def handle_data(self, data):
        if self.inside:
            self.text.append(data)


def test_findings_section_on_the_first_screen(check, varied_report, tmp_path):
    """Screenshot of the first screen (1280 x 900): the findings are there, in the DOM and on
    the screen, and every image of the page decoded."""
    html = (varied_report / "report.html").read_text()
    dom = check.dump_dom(check.find_chromium(None), html, tmp_path, 120)
    decoded = check.decoded_images(dom)
    assert decoded is not None and decoded[0] == decoded[1] > 0
    parser = _Findings()
    parser.feed(dom)
    text = " ".join(parser.text)
    assert parser.items >= 4 and "Fusion beats both sources" in text and "Best" in text

    shot = tmp_path / "first_screen.png"
    work = tmp_path / "shot"
    work.mkdir()
    rc, output, _ = check.run_chromium(
        check.find_chromium(None), varied_report / "report.html", shot, "1280,900", 120, work
    )
    assert shot.is_file(), output
    with Image.open(shot) as im:
        assert im.size == (1280, 900)
        grey = np.asarray(im.convert("L"), dtype=float)
    ink = grey < 128
    assert 0.005 < ink.mean() < 0.5  # text on a white page, not blank, not a black box
    # text all the way down the first screen: the findings fill it (rows of ink in each third)
    thirds = np.array_split(ink.any(axis=1), 3)
    assert all(t.mean() > 0.1 for t in thirds)
