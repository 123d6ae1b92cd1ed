"""One logging setup for the command line and the stages, and the one progress-bar helper.

Progress bars are for people watching a terminal. When stderr is not a terminal (a DVC stage,
CI, `mmif ... 2> log`, a seed worker's log file) `progress_bar` returns a disabled bar, so log files
get no carriage-return updates; the log lines (one per epoch, per split, ...) tell the progress
there. On a terminal, log lines are written through `tqdm.write`, which lifts the active bars
first and redraws them below, so a log line is never glued onto a bar.
"""

from __future__ import annotations

import logging
import os
import sys
from typing import IO, Any

from tqdm import tqdm

from mmif.interrupts import raise_pending_stop


def stream_is_terminal(stream: IO[str] | None = None) -> bool:
    """Whether `stream` (default: stderr) is an interactive terminal."""
    stream = sys.stderr if stream is None else stream
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):  # no isatty, or a closed stream
        return False


def progress_bar(iterable: Any = None, **kwargs: Any) -> tqdm:
    """A tqdm progress bar that shows only on an interactive terminal.

    Takes tqdm's arguments; `disable=True` still switches it off. Not on a terminal (its `file`,
    default stderr) it is disabled: it iterates, counts and closes without writing anything.
    """
    disable = bool(kwargs.pop("disable", False))
    if not stream_is_terminal(kwargs.get("file")):
        disable = True
    return _Bar(iterable, disable=disable, **kwargs)


class _Bar(tqdm):
    """tqdm that re-raises a Ctrl-C / SIGTERM at each step if its first exception was swallowed
    (see `mmif.interrupts`)."""

    def __iter__(self):
        for item in super().__iter__():
            raise_pending_stop()
            yield item

    def update(self, n: float | None = 1) -> bool | None:
        raise_pending_stop()
        return super().update(n)


class _BarSafeHandler(logging.StreamHandler):
    """Writes each record with `tqdm.write`: active bars are cleared before and redrawn after."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            tqdm.write(self.format(record), file=self.stream)
        except Exception:  # logging must never raise
            self.handleError(record)


def setup_logging(verbose: bool = False) -> None:
    level = logging.DEBUG if verbose or os.environ.get("MMIF_DEBUG") else logging.INFO
    handler = _BarSafeHandler(sys.stderr) if stream_is_terminal() else logging.StreamHandler()
    logging.basicConfig(
        level=level,
        format="%(asctime)s %(levelname)-7s %(name)s: %(message)s",
        datefmt="%H:%M:%S",
        handlers=[handler],
    )
    for noisy in ("PIL", "matplotlib", "urllib3", "h5py", "numexpr"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
