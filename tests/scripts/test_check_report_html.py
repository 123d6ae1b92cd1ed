"""scripts/check_report_html.py: static scan, net-log parsing and (when installed) Chromium."""

from __future__ import annotations

import base64
import json

import pytest

from tests.conftest import load_script

PNG_1x1 = base64.b64encode(
    bytes.fromhex(
        "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
        "1f15c4890000000d4944415478da63f8cfc0f01f0005000201a5d3b4e40000000049454e44ae426082"
    )
).decode()


@pytest.fixture(scope="module")
def check():
    return load_script("scripts/check_report_html.py")


CLEAN = f"""<!DOCTYPE html><html><head><style>body {{ color: #222; }}</style></head>
<body><h1 id="top">Report</h1><p>Data from https://example.org/dataset (provenance text)</p><a href="#top">top</a>
<img src="data:image/png;base64,{PNG_1x1}" alt="x"></body></html>"""


def test_clean_html_has_no_problems(check):
    problems, notes, n_img = check.static_findings(CLEAN)
    assert problems == [] and n_img == 1
    assert notes == ["https://example.org/dataset"]  # text only, loads nothing


@pytest.mark.parametrize(
    "snippet",
    [
        '<img src="https://example.org/a.png">',
        '<img src="//cdn.example.org/a.png">',
        '<img src="plots/a.png">',  # relative file: not self-contained
        '<img srcset="data:image/png;base64,AA 1x, http://x.org/b.png 2x">',
        '<link rel="stylesheet" href="style.css">',
        '<script src="data:text/javascript,1"></script>',
        "<style>@import 'http://x.org/a.css';</style>",
        '<div style="background: url(http://x.org/bg.png)"></div>',
        "<style>body { background: url('img.png'); }</style>",
    ],
)
def test_external_references_are_found(check, snippet):
    problems, _, _ = check.static_findings(f"<html><body>{snippet}</body></html>")
    assert problems, snippet


def test_broken_in_page_link_is_found(check):
    problems, _, _ = check.static_findings('<html><body><a href="#nowhere">x</a></body></html>')
    assert problems and "no element with this id" in problems[0]
    ok, _, _ = check.static_findings(
        '<html><body><a href="#h">x</a><h2 id="h">H</h2></body></html>'
    )
    assert ok == []


def test_net_log_requests(check, tmp_path):
    log = {
        "constants": {},
        "events": [
            {"params": {"url": "file:///tmp/report.html"}},
            {"params": {"url": "data:image/png;base64,AAAA"}},
            {"params": {"host": "localhost"}},
            {"params": {"url": "https://fonts.example.com/font.woff2", "method": "GET"}},
            {"params": {"host": "tracker.example.net"}},
            {"type": 3},
        ],
    }
    found = check.external_requests(log)
    assert "https://fonts.example.com/font.woff2" in found
    assert any("tracker.example.net" in f for f in found)
    assert not any("report.html" in f or "localhost" in f or f.startswith("data:") for f in found)
    # a log cut off before Chromium closed it is repaired
    text = json.dumps(log)
    truncated = text[: text.rindex("]}")] + ","
    (tmp_path / "netlog.json").write_text(truncated)
    assert check.read_net_log(tmp_path / "netlog.json")["events"][0]["params"]["url"].startswith(
        "file:"
    )


def test_missing_chromium_says_how_to_install(check, tmp_path, monkeypatch, capsys):
    page = tmp_path / "report.html"
    page.write_text(CLEAN)
    monkeypatch.setattr(check, "find_chromium", lambda explicit: None)
    assert check.main([str(page)]) == 2
    out = capsys.readouterr().out
    assert "no external references" in out and "apt-get install chromium" in out


@pytest.mark.slow
def test_chromium_screenshot_and_no_requests(check, tmp_path):
    if check.find_chromium(None) is None:
        pytest.skip("Chromium not installed (apt-get install chromium)")
    page = tmp_path / "report.html"
    page.write_text(CLEAN)
    shot = tmp_path / "shot.png"
    assert check.main([str(page), "--screenshot", str(shot), "--window-size", "400,300"]) == 0
    assert shot.stat().st_size > 0


@pytest.mark.slow
def test_chromium_reports_an_external_image(check, tmp_path):
    if check.find_chromium(None) is None:
        pytest.skip("Chromium not installed (apt-get install chromium)")
    page = tmp_path / "report.html"
    page.write_text('<html><body><img src="http://example.invalid/a.png"></body></html>')
    assert (
        check.main([str(page), "--screenshot", str(tmp_path / "s.png"), "--window-size", "400,300"])
        == 1
    )


def test_page_requests_leave_out_the_browsers_own_traffic(check):
    log = {
        "constants": {"logEventTypes": {"URL_REQUEST_START_JOB": 7, "OTHER": 8}},
        "events": [
            {
                "type": 7,
                "params": {"url": "https://update.googleapis.com/x", "initiator": "not an origin"},
            },
            {"type": 7, "params": {"url": "https://cdn.example.com/vega.js", "initiator": "null"}},
            {"type": 7, "params": {"url": "file:///tmp/report.html", "initiator": "null"}},
            {"type": 8, "params": {"url": "https://elsewhere.example.org/", "initiator": "null"}},
        ],
    }
    assert check.page_requests(log) == ["https://cdn.example.com/vega.js"]
    assert "https://update.googleapis.com/x" in check.external_requests(log)
