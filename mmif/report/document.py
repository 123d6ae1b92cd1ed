"""The report as a list of sections of text, tables and figures, and its Markdown rendering.

The same `Document` is rendered to report.md (figures linked by relative path) and to the
self-contained report.html (`mmif.report.html`), so the two never disagree.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd

from mmif.report.tables import to_markdown


@dataclass
class Paragraph:
    text: str


@dataclass
class Bullets:
    items: list[str]


@dataclass
class Table:
    """A display table; `files` are the CSV/Markdown files written for it (relative paths)."""

    caption: str
    frame: pd.DataFrame
    files: tuple[str, ...] = ()


@dataclass
class Figure:
    """A plot saved as PNG (embedded in HTML, linked in Markdown) and SVG (relative paths)."""

    caption: str
    png: str
    svg: str | None = None


Block = Paragraph | Bullets | Table | Figure


@dataclass
class Section:
    title: str
    blocks: list[Block] = field(default_factory=list)

    def add(self, block: Block) -> None:
        self.blocks.append(block)


@dataclass
class Document:
    title: str
    sections: list[Section] = field(default_factory=list)

    def section(self, title: str) -> Section:
        s = Section(title)
        self.sections.append(s)
        return s


def render_markdown(doc: Document) -> str:
    """report.md: tables inline, images as relative links to the PNG files (SVG next to them)."""
    out = [f"# {doc.title}\n"]
    for sec in doc.sections:
        out.append(f"## {sec.title}\n")
        for block in sec.blocks:
            if isinstance(block, Paragraph):
                out.append(block.text + "\n")
            elif isinstance(block, Bullets):
                out.append("\n".join(f"- {item}" for item in block.items) + "\n")
            elif isinstance(block, Table):
                files = (
                    f" (files: {', '.join(f'`{f}`' for f in block.files)})" if block.files else ""
                )
                out.append(f"**{block.caption}**{files}\n\n{to_markdown(block.frame)}")
            elif isinstance(block, Figure):
                svg = f" ([SVG]({block.svg}))" if block.svg else ""
                alt = block.png.rsplit("/", 1)[-1].rsplit(".", 1)[0]
                out.append(f"![{alt}]({block.png})\n\n_{block.caption}_{svg}\n")
    return "\n".join(out)
