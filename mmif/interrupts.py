"""Ctrl-C and SIGTERM that cannot be lost.

Python raises the exception of a signal handler wherever the main thread happens to be. When
that is inside a destructor (`__del__`, e.g. a progress bar being garbage-collected) or a
callback whose exceptions are ignored, the exception is printed as "Exception ignored in ..." and
the program runs on: a training told to stop would finish all its epochs and exit 0.

So the handlers installed by `handle_stop_signals` also record the signal, and
`raise_pending_stop` raises it again; every progress bar (`mmif.logging_utils.progress_bar`)
calls it at each step, so a swallowed stop takes effect at the next step at the latest. The
CLI calls `clear_pending_stop` once the stop has been handled.
"""

from __future__ import annotations

import signal
from collections.abc import Iterator
from contextlib import contextmanager

_pending: int | None = None


def _stop_exception(signum: int) -> BaseException:
    # SIGINT behaves like Python's default (KeyboardInterrupt); SIGTERM (DVC, a scheduler or a
    # parent stopping its workers) unwinds the same way, so temporary folders are removed
    if signum == signal.SIGINT:
        return KeyboardInterrupt()
    return SystemExit(128 + signum)


def _handler(signum: int, frame: object) -> None:
    global _pending
    _pending = signum
    raise _stop_exception(signum)


def raise_pending_stop() -> None:
    """Raise the stop of a signal whose first exception was swallowed; no-op otherwise."""
    global _pending
    if _pending is not None:
        signum, _pending = _pending, None
        raise _stop_exception(signum)


def clear_pending_stop() -> None:
    global _pending
    _pending = None


@contextmanager
def handle_stop_signals() -> Iterator[None]:
    """Install the SIGINT / SIGTERM handlers for the block (main thread only; elsewhere a no-op)."""
    previous = {}
    try:
        for sig in (signal.SIGINT, signal.SIGTERM):
            previous[sig] = signal.signal(sig, _handler)
    except ValueError:  # not the main thread (e.g. called from a test runner thread)
        pass
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        clear_pending_stop()
