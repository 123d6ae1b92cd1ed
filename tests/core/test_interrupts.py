"""A Ctrl-C or SIGTERM whose exception is swallowed (e.g. raised inside a destructor) still stops
the next progress-bar step, and the CLI clears it once handled."""

from __future__ import annotations

import os
import signal

import pytest

from mmif import interrupts
from mmif.logging_utils import progress_bar

# the destructor's swallowed exception is what these tests provoke
pytestmark = pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")


class _SwallowsInDestructor:
    def __del__(self):
        os.kill(os.getpid(), self.sig)


def _swallow(sig: int) -> None:
    # the signal arrives while a destructor runs: Python prints "Exception ignored" and goes on
    obj = _SwallowsInDestructor()
    obj.sig = sig
    del obj


@pytest.mark.parametrize(
    ("sig", "exc", "code"),
    [(signal.SIGINT, KeyboardInterrupt, None), (signal.SIGTERM, SystemExit, 128 + signal.SIGTERM)],
)
def test_a_swallowed_stop_is_raised_at_the_next_step(sig, exc, code):
    seen = []
    with interrupts.handle_stop_signals():
        with pytest.raises(exc) as info:
            for i in progress_bar(range(5)):
                seen.append(i)
                if i == 1:
                    _swallow(sig)  # without the pending stop, the loop would run to 4
        assert seen == [0, 1]
        if code is not None:
            assert info.value.code == code
        # raised once: later loops run normally
        assert list(progress_bar(range(3))) == [0, 1, 2]


def test_update_raises_a_swallowed_stop_and_handlers_are_restored():
    before = signal.getsignal(signal.SIGINT)
    with interrupts.handle_stop_signals():
        bar = progress_bar(total=3)
        _swallow(signal.SIGINT)
        with pytest.raises(KeyboardInterrupt):
            bar.update(1)
        bar.close()
        _swallow(signal.SIGINT)
    # leaving the block forgets a pending stop and restores the previous handlers
    assert list(progress_bar(range(2))) == [0, 1]
    assert signal.getsignal(signal.SIGINT) is before
