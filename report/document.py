"""The report as a list of sections of text, tables and figures, and its Markdown rendering.

The same `Document` is rendered to report.md (figures linked by relative path) and to the
self-contained report.html (`report.html`), so the two never disagree.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import pandas as pd

from report.tables import to_markdown


@dataclass
class Paragraph:
    text: str


@dataclass
class Bullets:
    items: list[str]


def slug(text: str) -> str:
    """An anchor name: lower case, runs of other characters as "-"."""
    return re.sub(r"[^a-z0-9_]+", "-", text.lower()).strip("-") or "section"


def _stem(path: str) -> str:
    return path.rsplit("/", 1)[-1].rsplit(".", 1)[0]


@dataclass
class Table:
    """A display table; `files` are the CSV/Markdown files written for it (relative paths).

    Its anchor (for links from the findings) is `tab-<name of its first file>`, e.g.
    tab-detect_scores, unless given.
    """

    caption: str
    frame: pd.DataFrame
    files: tuple[str, ...] = ()
    anchor: str | None = None

    @property
    def id(self) -> str | None:
        return self.anchor or (f"tab-{_stem(self.files[0])}" if self.files else None)


@dataclass
class Figure:
    """A plot saved as PNG (embedded in HTML, linked in Markdown) and SVG (relative paths);
    anchor `fig-<png name>`, e.g. fig-differences, unless given."""

    caption: str
    png: str
    svg: str | None = None
    anchor: str | None = None

    @property
    def id(self) -> str:
        return self.anchor or f"fig-{_stem(self.png)}"


Block = Paragraph | Bullets | Table | Figure


@dataclass
class Section:
    title: str
    blocks: list[Block] = field(default_factory=list)
    anchor: str | None = None

    @property
    def id(self) -> str:
        return self.anchor or slug(self.title)

    def add(self, block: Block) -> None:
        self.blocks.append(block)


@dataclass
class Document:
    title: str
    sections: list[Section] = field(default_factory=list)

    def section(self, title: str, anchor: str | None = None) -> Section:
        s = Section(title, anchor=anchor)
        self.sections.append(s)
        return s

    def anchors(self) -> set[str]:
        """Every anchor a link may point to: sections, tables with files, figures."""
        out = {s.id for s in self.sections}
        for sec in self.sections:
            out |= {b.id for b in sec.blocks if isinstance(b, (Table, Figure)) and b.id}
        return out


#: the report's only link syntax: Markdown links to anchors of the same page, [text](#anchor)
LINK = re.compile(r"\[([^\]]+)\]\(#([A-Za-z0-9_\-]+)\)")


def links(doc: Document) -> set[str]:
    """Anchors linked from the document's text."""
    found: set[str] = set()
    for sec in doc.sections:
        for block in sec.blocks:
            texts = (
                [block.text]
                if isinstance(block, Paragraph)
                else block.items
                if isinstance(block, Bullets)
                else [block.caption]
            )
            for t in texts:
                found |= {m.group(2) for m in LINK.finditer(t)}
    return found


def _anchor(block_id: str | None) -> str:
    return f'<a id="{block_id}"></a>\n' if block_id else ""


def render_markdown(doc: Document) -> str:
    """report.md: tables inline, images as relative links to the PNG files (SVG next to them)."""
    out = [f"# {doc.title}\n"]
    for sec in doc.sections:
        out.append(f"{_anchor(sec.id)}## {sec.title}\n")
        for block in sec.blocks:
            if isinstance(block, Paragraph):
                out.append(block.text + "\n")
            elif isinstance(block, Bullets):
                out.append("\n".join(f"- {item}" for item in block.items) + "\n")
            elif isinstance(block, Table):
                files = (
                    f" (files: {', '.join(f'`{f}`' for f in block.files)})" if block.files else ""
                )
                out.append(
                    f"{_anchor(block.id)}**{block.caption}**{files}\n\n{to_markdown(block.frame)}"
                )
            elif isinstance(block, Figure):
                svg = f" ([SVG]({block.svg}))" if block.svg else ""
                alt = block.png.rsplit("/", 1)[-1].rsplit(".", 1)[0]
                out.append(f"{_anchor(block.id)}![{alt}]({block.png})\n\n_{block.caption}_{svg}\n")
    return "\n".join(out)
