"""Writing the report's figure files (PNG and SVG), at once or all together at the end.

matplotlib renders each file on one core; a report writes about twenty of them, about 40 % of its
time. Inside `written_together(jobs)` the files are only collected, and leaving the block writes
them in `jobs` processes (forked: each already holds every figure), which take the next file in
turn, largest first. Every file has the same bytes either way: a figure is complete when it is
handed over, `save_png_svg` leaves dates and versions out of the metadata, and the callers fix
the SVG id salt (`report.plots.save_figure`, `report.card.save_card`).

Without the block, or with `jobs` 1, or where the system cannot fork, files are written at once
in this process.
"""

from __future__ import annotations

import contextlib
import contextvars
import logging
import multiprocessing
import pickle
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import matplotlib
from matplotlib.figure import Figure as MplFigure

log = logging.getLogger(__name__)


@dataclass
class FigureFile:
    """One file of a figure: `fig.savefig(path, **options)` under the matplotlib settings `rc`."""

    fig: MplFigure
    path: Path
    options: dict[str, Any] = field(default_factory=dict)
    rc: dict[str, Any] = field(default_factory=dict)

    @property
    def size(self) -> float:
        """What orders the work (larger first): the figure's area in square inches times its
        number of axes, a rough measure of what matplotlib has to draw."""
        width, height = self.fig.get_size_inches()
        return float(width * height * max(1, len(self.fig.axes)))

    def write(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with matplotlib.rc_context(self.rc):
            self.fig.savefig(self.path, **self.options)


_collected: contextvars.ContextVar[list[FigureFile] | None] = contextvars.ContextVar(
    "report_figure_files", default=None
)


def save_png_svg(
    fig: MplFigure, png: Path, svg: Path | None, rc: dict[str, Any], dpi: int, **options: Any
) -> None:
    """`fig` as PNG at `dpi` and (unless `svg` is None) as SVG, without dates or software
    versions in their metadata, under the matplotlib settings `rc` (e.g. a fixed SVG id salt):
    now, or inside `written_together` when the block ends. `options` go to both savefig calls."""
    files = [FigureFile(fig, png, {**options, "dpi": dpi, "metadata": {"Software": None}}, rc)]
    if svg is not None:
        files.append(
            FigureFile(fig, svg, {**options, "metadata": {"Date": None, "Creator": None}}, rc)
        )
    save_files(files)


def save_files(files: Sequence[FigureFile]) -> None:
    """Write `files` now, or, inside `written_together`, when the block ends."""
    collected = _collected.get()
    if collected is None:
        for f in files:
            f.write()
    else:
        collected.extend(files)


@contextlib.contextmanager
def written_together(jobs: int) -> Iterator[list[FigureFile]]:
    """Collect the figure files saved inside the block and write them in `jobs` processes when
    it ends without an error (after an error nothing is written). Yields the collected list."""
    collected: list[FigureFile] = []
    token = _collected.set(collected)
    try:
        yield collected
    finally:
        _collected.reset(token)
    write_files(collected, jobs)


def write_files(files: Sequence[FigureFile], jobs: int) -> None:
    """Write every file, in up to `jobs` processes (this one included).

    An error in any process is raised here, as the same exception, once every process has
    stopped; the other files may or may not have been written (the report discards its folder).
    """
    order = sorted(files, key=lambda f: f.size, reverse=True)
    jobs = min(jobs, len(order))
    if jobs < 2 or "fork" not in multiprocessing.get_all_start_methods():
        for f in order:
            f.write()
        return
    ctx = multiprocessing.get_context("fork")
    turn = ctx.Value("i", 0)
    errors = ctx.SimpleQueue()
    helpers = [
        ctx.Process(target=_write_turns, args=(order, turn, errors), daemon=True)
        for _ in range(jobs - 1)
    ]
    for p in helpers:
        p.start()
    log.debug("writing %d figure files in %d processes", len(order), jobs)
    try:
        _write_turns(order, turn, None)
    finally:
        for p in helpers:
            p.join()
    if not errors.empty():
        raise pickle.loads(errors.get())
    ended = [p.exitcode for p in helpers if p.exitcode != 0]
    if ended:
        raise RuntimeError(
            f"a process writing the report's figures ended with exit code {ended[0]}"
        )


def _write_turns(files: Sequence[FigureFile], turn: Any, errors: Any) -> None:
    """Write the next unclaimed file until none is left. In a helper process (`errors` given) an
    exception is handed to the parent instead of raised."""
    while True:
        with turn.get_lock():
            i = turn.value
            turn.value += 1
        if i >= len(files):
            return
        try:
            files[i].write()
        except BaseException as exc:
            if errors is None:
                raise
            errors.put(_pickled(exc, files[i].path))
            return


def _pickled(exc: BaseException, path: Path) -> bytes:
    """`exc` pickled for the parent; its text instead where it cannot be pickled or is large
    (a pipe holds 64 kB: a larger message would block the helper until the parent reads it,
    and the parent reads only after the helper has ended)."""
    try:
        data = pickle.dumps(exc)
    except Exception:
        data = b""
    if not data or len(data) > 16_000:
        data = pickle.dumps(RuntimeError(f"writing {path}: {exc!r}"[:4000]))
    return data
