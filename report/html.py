"""report.html: one self-contained file.

Images are embedded as base64 `data:` URIs and the style sheet is inline, so the page shows
the same offline, attached to an e-mail or archived: no scripts, fonts, style sheets or images
are fetched from anywhere (scripts/check_report_html.py verifies this in a browser).
"""

from __future__ import annotations

import base64
import html
import re
from pathlib import Path

from report.document import LINK, Bullets, Document, Figure, Paragraph, Table
from report.tables import display_frame, numeric_column

STYLE = """
body { font-family: sans-serif; max-width: 1200px; margin: 2em auto; padding: 0 1em; color: #222; }
h1, h2 { border-bottom: 1px solid #ccc; padding-bottom: .2em; }
table { border-collapse: collapse; margin: .5em 0 1.5em; font-size: 90%; }
th, td { border: 1px solid #ccc; padding: .25em .6em; text-align: right; }
th { background: #f2f2f2; }
td:first-child, th:first-child, td.text, th.text { text-align: left; }
figure { margin: 1em 0 2em; }
figure img { max-width: 100%; height: auto; border: 1px solid #eee; }
figcaption, .caption { color: #444; font-style: italic; }
code { background: #f5f5f5; padding: 0 .2em; }
.na { color: #888; }
"""

_CODE = re.compile(r"`([^`]+)`")
_BOLD = re.compile(r"\*\*([^*]+)\*\*")


def _inline(text: str) -> str:
    """Escape text, keeping the little Markdown the report's text uses: `code`, **bold** and
    links to anchors of the same page, [text](#anchor)."""
    out = _CODE.sub(lambda m: f"<code>{m.group(1)}</code>", html.escape(text, quote=False))
    out = _BOLD.sub(lambda m: f"<strong>{m.group(1)}</strong>", out)
    return LINK.sub(lambda m: f'<a href="#{m.group(2)}">{m.group(1)}</a>', out)


def _id(block_id: str | None) -> str:
    return f' id="{html.escape(block_id)}"' if block_id else ""


def data_uri(path: Path) -> str:
    mime = {".png": "image/png", ".svg": "image/svg+xml", ".jpg": "image/jpeg"}.get(
        path.suffix.lower(), "application/octet-stream"
    )
    return f"data:{mime};base64,{base64.b64encode(path.read_bytes()).decode('ascii')}"


def _table(frame) -> str:
    """A display table: numbers (and intervals) right-aligned, text columns left-aligned."""
    text_cols = [not numeric_column(frame[c]) for c in frame.columns]
    cls = [' class="text"' if t else "" for t in text_cols]
    head = "".join(
        f"<th{c}>{html.escape(str(name))}</th>" for name, c in zip(frame.columns, cls, strict=True)
    )
    body = "".join(
        "<tr>"
        + "".join(f"<td{c}>{html.escape(str(v))}</td>" for v, c in zip(row, cls, strict=True))
        + "</tr>"
        for row in frame.itertuples(index=False, name=None)
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def render_html(doc: Document, root: Path) -> str:
    """The document as HTML; figure paths are relative to `root`, whose PNGs are embedded."""
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en">',
        '<head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{html.escape(doc.title)}</title>",
        f"<style>{STYLE}</style></head>",
        "<body>",
        f"<h1>{html.escape(doc.title)}</h1>",
    ]
    for sec in doc.sections:
        parts.append(f"<h2{_id(sec.id)}>{html.escape(sec.title)}</h2>")
        for block in sec.blocks:
            if isinstance(block, Paragraph):
                parts.append(f"<p>{_inline(block.text)}</p>")
            elif isinstance(block, Bullets):
                parts.append(
                    "<ul>" + "".join(f"<li>{_inline(i)}</li>" for i in block.items) + "</ul>"
                )
            elif isinstance(block, Table):
                parts.append(f'<p class="caption"{_id(block.id)}>{_inline(block.caption)}</p>')
                if block.frame.empty:
                    parts.append('<p class="na">not available</p>')
                else:
                    parts.append(_table(display_frame(block.frame)))
            elif isinstance(block, Figure):
                alt = html.escape(block.caption, quote=True)
                parts.append(
                    f'<figure{_id(block.id)}><img src="{data_uri(root / block.png)}" alt="{alt}">'
                    f"<figcaption>{_inline(block.caption)}</figcaption></figure>"
                )
    parts += ["</body>", "</html>", ""]
    return "\n".join(parts)
