#!/usr/bin/env python
"""Check that report.html is self-contained: open it in headless Chromium, take a screenshot
and verify that the page makes no network request to any host.

Three checks:
1. static: every src/href/srcset/poster/... attribute, CSS url() and @import of the HTML is a
   `data:` URI or an in-page anchor (no http(s)://, protocol-relative // or relative file links),
   and every in-page link (#anchor) has its target;
2. browser: Chromium loads the file with background networking, sync and component updates
   off and writes its network log (--log-net-log); every request that the page made (told apart
   by its initiator) to anything but file:, data: and local addresses is reported. Chromium's
   own background traffic (update checks and the like: initiator "not an origin") is listed as
   a note and does not fail the check;
3. images: a copy of the page with a small probe script (the report itself has none) is loaded
   again with --dump-dom; the probe decodes every <img> and writes how many decoded into the
   DOM, so a corrupt embedded image fails the check.

Usage:
    python scripts/check_report_html.py results/report/report.html [--screenshot shot.png]
Exit status: 0 clean, 1 external references or requests found, 2 Chromium missing or failed.
Chromium is not installed by this script; on Debian/Ubuntu: `sudo apt-get install chromium`.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
import tempfile
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import urlsplit

CHROMIUM_CANDIDATES = (
    "/usr/bin/chromium",
    "chromium",
    "chromium-browser",
    "google-chrome",
    "google-chrome-stable",
)
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--hide-scrollbars",
    "--disable-default-apps",
    "--disable-extensions",
)
URL_ATTRIBUTES = frozenset(
    {
        "src",
        "href",
        "srcset",
        "poster",
        "action",
        "formaction",
        "data",
        "background",
        "xlink:href",
        "ping",
        "manifest",
    }
)
LOCAL_HOSTS = frozenset({"", "localhost", "127.0.0.1", "::1", "[::1]"})
LOCAL_SCHEMES = frozenset({"file", "data", "about", "chrome", "blob"})
CSS_URL = re.compile(r"""url\(\s*['"]?([^'")]*)""", re.I)
CSS_IMPORT = re.compile(r"""@import\s+(?:url\()?\s*['"]?([^'")\s;]+)""", re.I)
URL_IN_TEXT = re.compile(r"""\b(?:https?|wss?|ftp)://[^\s"'<>)]+""", re.I)


def say(text: str = "") -> None:
    sys.stdout.write(text + "\n")


class _ReferenceCollector(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.references: list[tuple[str, str]] = []  # (where, value)
        self.tags: list[str] = []
        self.ids: set[str] = set()
        self._in_style = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        self._in_style = tag == "style"
        for name, value in attrs:
            value = value or ""
            if name in ("id", "name"):
                self.ids.add(value)
            if name in URL_ATTRIBUTES:
                parts = (
                    [p.strip().split(" ")[0] for p in value.split(",")]
                    if name == "srcset"
                    else [value]
                )
                self.references += [(f"<{tag} {name}>", p) for p in parts]
            elif name == "style":
                self.references += [(f"<{tag} style> url()", u) for u in CSS_URL.findall(value)]
            elif tag == "meta" and name == "content" and "url=" in value.lower():
                self.references.append(("<meta refresh>", value.lower().split("url=", 1)[1]))

    def handle_endtag(self, tag: str) -> None:
        if tag == "style":
            self._in_style = False

    def handle_data(self, data: str) -> None:
        if self._in_style:
            self.references += [("<style> url()", u) for u in CSS_URL.findall(data)]
            self.references += [("<style> @import", u) for u in CSS_IMPORT.findall(data)]


def is_embedded(value: str) -> bool:
    """True for references that need nothing outside the file: data: URIs and #anchors."""
    v = value.strip()
    return v == "" or v.startswith("#") or v.lower().startswith("data:")


def static_findings(html_text: str) -> tuple[list[str], list[str], int]:
    """(problems, notes, number of <img>) of the HTML text itself.

    Problems are references the browser would follow to something outside the file; notes are
    URLs merely written in the text (e.g. a dataset's provenance), which load nothing.
    """
    parser = _ReferenceCollector()
    parser.feed(html_text)
    problems = [
        f"{where}: {value[:120]}" for where, value in parser.references if not is_embedded(value)
    ]
    for tag in ("script", "link", "iframe", "object", "embed", "base"):
        if tag in parser.tags:
            problems.append(f"<{tag}> element present (a self-contained report needs none)")
    for where, value in parser.references:
        target = value.strip()[1:]
        if value.strip().startswith("#") and target and target not in parser.ids:
            problems.append(f"{where}: {value[:120]} (no element with this id: a broken link)")
    referenced = {value for _, value in parser.references}
    notes = [u[:120] for u in sorted(set(URL_IN_TEXT.findall(html_text))) if u not in referenced]
    return problems, notes, parser.tags.count("img")


def find_chromium(explicit: str | None) -> str | None:
    for candidate in ([explicit] if explicit else []) + list(CHROMIUM_CANDIDATES):
        path = candidate if Path(candidate).is_file() else shutil.which(candidate)
        if path:
            return str(path)
    return None


def read_net_log(path: Path) -> dict:
    """Chromium's net log; repaired when the browser exited before closing the JSON."""
    text = path.read_text(errors="replace").strip()
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        repaired = text.rstrip(",\n ") + ("]}" if not text.endswith("]}") else "")
        return json.loads(repaired)


def _walk_strings(value: object, key: str = ""):
    if isinstance(value, dict):
        for k, v in value.items():
            yield from _walk_strings(v, k)
    elif isinstance(value, list):
        for v in value:
            yield from _walk_strings(v, key)
    elif isinstance(value, str):
        yield key, value


def _is_local(url: str) -> bool:
    """file:/data:/... URLs and this machine's addresses; anything unparsable counts as remote."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
    except ValueError:  # e.g. a malformed IPv6 literal in a log string
        return False
    return parts.scheme.lower() in LOCAL_SCHEMES or host in LOCAL_HOSTS


def external_requests(net_log: dict) -> list[str]:
    """URLs and host names in the events of a net log that point away from this machine."""
    found: set[str] = set()
    for event in net_log.get("events", []):
        for key, value in _walk_strings(event.get("params", {})):
            if "://" in value:
                for url in URL_IN_TEXT.findall(value) or [value]:
                    if not _is_local(url):
                        found.add(url)
            elif key in ("host", "hostname", "host_port", "server") and value:
                host = value.rsplit(":", 1)[0] if value.count(":") == 1 else value
                if host.lower() not in LOCAL_HOSTS:
                    found.add(f"host lookup/connection: {value}")
    return sorted(found)


#: Chromium's net log gives a request the browser makes by itself (update checks, accounts,
#: time sync) this initiator; requests made by the page carry the page's origin ("null" for file:)
BROWSER_INITIATOR = "not an origin"


def page_requests(net_log: dict) -> list[str]:
    """Non-local URLs that the page itself requested (not Chromium's own background traffic)."""
    names = {v: k for k, v in (net_log.get("constants", {}).get("logEventTypes") or {}).items()}
    found: set[str] = set()
    for event in net_log.get("events", []):
        params = event.get("params") or {}
        url = params.get("url")
        if not isinstance(url, str) or "initiator" not in params:
            continue
        if names and names.get(event.get("type")) not in ("URL_REQUEST_START_JOB", None):
            continue
        if params["initiator"] == BROWSER_INITIATOR:
            continue
        if not _is_local(url):
            found.add(url)
    return sorted(found)


def run_chromium(
    chromium: str, html_path: Path, screenshot: Path, window: str, timeout: float, work: Path
) -> tuple[int, str, Path]:
    net_log = work / "netlog.json"
    cmd = [
        chromium,
        *CHROMIUM_FLAGS,
        f"--user-data-dir={work / 'profile'}",
        f"--log-net-log={net_log}",
        f"--screenshot={screenshot}",
        f"--window-size={window}",
        "--virtual-time-budget=5000",
        html_path.resolve().as_uri(),
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)
    return proc.returncode, (proc.stdout + proc.stderr)[-2000:], net_log


#: appended to a temporary copy of the page (never to the report): after the load event, an
#: image that failed to decode is complete with naturalWidth 0; writes "decoded/total" into the
#: DOM that --dump-dom prints
IMAGE_PROBE = """<script>
window.addEventListener("load", function () {
  var imgs = Array.prototype.slice.call(document.images);
  var ok = imgs.filter(function (img) { return img.complete && img.naturalWidth > 0; });
  document.body.setAttribute("data-images-decoded", ok.length + "/" + imgs.length);
});
</script>"""
DECODED = re.compile(r'data-images-decoded="(\d+)/(\d+)"')


def dump_dom(chromium: str, html_text: str, work: Path, timeout: float, probe: bool = True) -> str:
    """The page's DOM after loading in Chromium (with the image probe appended), as text."""
    page = work / "probe.html"
    body_end = html_text.lower().rfind("</body>")
    extra = IMAGE_PROBE if probe else ""
    page.write_text(
        html_text[:body_end] + extra + html_text[body_end:] if body_end >= 0 else html_text + extra
    )
    cmd = [
        chromium,
        *CHROMIUM_FLAGS,
        f"--user-data-dir={work / 'profile-dom'}",
        "--virtual-time-budget=10000",
        "--dump-dom",
        page.resolve().as_uri(),
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)
    return proc.stdout


def decoded_images(dom: str) -> tuple[int, int] | None:
    """(decoded, total) images written by the probe into a dumped DOM; None if it did not run."""
    m = DECODED.search(dom)
    return (int(m.group(1)), int(m.group(2))) if m else None


def screenshot_facts(path: Path) -> str:
    try:
        from PIL import Image

        with Image.open(path) as im:
            lo, hi = im.convert("L").getextrema()
            blank = " (blank: a single colour)" if lo == hi else ""
            return f"{im.width}x{im.height}{blank}"
    except Exception as exc:  # any failure is reported, not raised
        return f"unreadable ({exc})"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("report", type=Path, help="report.html to check")
    p.add_argument(
        "--chromium", help="Chromium/Chrome executable (default: /usr/bin/chromium or on PATH)"
    )
    p.add_argument(
        "--screenshot", type=Path, help="where to save the screenshot (default: next to the report)"
    )
    p.add_argument(
        "--window-size", default="1280,4000", help="browser window W,H (default: %(default)s)"
    )
    p.add_argument(
        "--timeout",
        type=float,
        default=120.0,
        help="seconds to wait for Chromium (default: %(default)s)",
    )
    args = p.parse_args(argv)

    if not args.report.is_file():
        say(f"{args.report}: not found; build the report first (mmif report / dvc repro report)")
        return 2
    problems, notes, n_img = static_findings(args.report.read_text(errors="replace"))
    say(f"static check of {args.report}: {n_img} <img> elements")
    say(
        "  no external references"
        if not problems
        else "\n".join(f"  EXTERNAL: {x}" for x in problems)
    )
    for note in notes:
        say(f"  note: URL written in the text (loads nothing): {note}")

    chromium = find_chromium(args.chromium)
    if chromium is None:
        say(
            "Chromium not found (looked for /usr/bin/chromium, chromium, chromium-browser, google-chrome)."
        )
        say(
            "Install it, e.g. `sudo apt-get install chromium` (Debian/Ubuntu), or pass --chromium PATH."
        )
        return 2
    screenshot = args.screenshot or args.report.with_name("report_screenshot.png")
    with tempfile.TemporaryDirectory(prefix="check_report_") as tmp:
        try:
            rc, output, net_log_path = run_chromium(
                chromium, args.report, screenshot, args.window_size, args.timeout, Path(tmp)
            )
        except subprocess.TimeoutExpired:
            say(f"Chromium did not finish within {args.timeout:g} s")
            return 2
        say(f"chromium: {chromium} (exit status {rc})")
        if not net_log_path.is_file():
            say("Chromium wrote no net log; its output:\n" + output)
            return 2
        try:
            net_log = read_net_log(net_log_path)
            requests = page_requests(net_log)
            background = [r for r in external_requests(net_log) if r not in requests]
        except json.JSONDecodeError as exc:
            say(f"net log unreadable ({exc})")
            return 2
        try:
            dom = dump_dom(
                chromium, args.report.read_text(errors="replace"), Path(tmp), args.timeout
            )
        except subprocess.TimeoutExpired:
            dom = ""
        decoded = decoded_images(dom)
    if screenshot.is_file():
        say(f"screenshot: {screenshot} ({screenshot_facts(screenshot)})")
    else:
        say("no screenshot written; Chromium output:\n" + output)
    if requests:
        say("the page requested other hosts:")
        say("\n".join(f"  {r}" for r in requests))
    else:
        say("network log: the page requested nothing from any other host")
    if background:
        say(
            f"  note: {len(background)} entries of Chromium's own background traffic (update "
            "checks and the like), not the page's: " + ", ".join(background[:4])
        )
    if decoded is None:
        say("images: the probe did not report (Chromium gave no DOM); not checked")
    else:
        say(f"images decoded in the browser: {decoded[0]} of {decoded[1]}")
    images_ok = decoded is None or decoded[0] == decoded[1]
    clean = not problems and not requests and screenshot.is_file() and images_ok
    say(
        "RESULT: "
        + ("self-contained, no network requests" if clean else "problems found (see above)")
    )
    return 0 if clean else 1


if __name__ == "__main__":
    sys.exit(main())
