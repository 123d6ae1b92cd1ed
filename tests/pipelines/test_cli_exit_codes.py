"""The exit statuses of `mmif` (mmif.cli.main): 0 success, 1 the user's error (one line), 2
usage, 130 interrupted (Ctrl-C), 128 + 15 terminated; a bug is an internal error with its
traceback, never a quiet status."""

from __future__ import annotations

import errno
import logging
import signal

import pytest
from cli_helpers import error_lines, mmif, mmif_process

import pipelines.methods
from mmif.errors import InputError, MissingInputError, OutputError


def test_success_is_0(capsys):
    status, log = mmif("methods")
    assert status == 0 and not error_lines(log)
    assert "max" in capsys.readouterr().out.split()


@pytest.mark.parametrize(
    "error",
    [
        InputError("a.png: not an image; re-export it"),
        MissingInputError("data/prepared: not found; run mmif prepare"),
        OutputError("out: holds the inputs; give another folder"),
        OSError(errno.EACCES, "Permission denied", "results/x.csv"),
    ],
    ids=["input", "missing", "output", "permission"],
)
def test_user_and_environment_errors_are_1_with_one_line(monkeypatch, error):
    def fail(args):
        raise error

    monkeypatch.setattr(pipelines.methods, "run", fail)
    status, log = mmif("methods")
    assert status == 1
    assert len(error_lines(log)) == 1 and "Traceback" not in log, log


def test_verbose_shows_the_traceback_of_a_user_error(monkeypatch):
    def fail(args):
        raise InputError("a.png: not an image")

    monkeypatch.setattr(pipelines.methods, "run", fail)
    with pytest.raises(InputError, match="a.png"):
        mmif("methods", "--verbose")


def test_an_oserror_that_is_not_about_the_machine_is_a_bug(monkeypatch, caplog):
    def fail(args):
        raise OSError(errno.EINVAL, "Invalid argument")

    monkeypatch.setattr(pipelines.methods, "run", fail)
    with caplog.at_level(logging.INFO), pytest.raises(OSError, match="Invalid argument"):
        mmif("methods")
    assert "internal error (OSError" in caplog.text


@pytest.mark.parametrize(
    "argv",
    [["fuse"], ["fuse", "--method", "max", "--no-such-option"], ["no-such-command"]],
    ids=["missing-required", "unknown-option", "unknown-command"],
)
def test_usage_errors_are_2(argv, capsys):
    with pytest.raises(SystemExit) as exc:
        mmif(*argv)
    assert exc.value.code == 2
    assert "usage: mmif" in capsys.readouterr().err


def test_no_command_prints_help_and_is_2(capsys):
    status, _ = mmif()
    assert status == 2
    assert "usage: mmif" in capsys.readouterr().out


def test_interrupt_is_130_and_says_what_was_kept(monkeypatch):
    def interrupted(args):
        raise KeyboardInterrupt

    monkeypatch.setattr(pipelines.methods, "run", interrupted)
    status, log = mmif("methods")
    assert status == 130
    assert "interrupted: unfinished outputs were discarded" in error_lines(log)[0]


def test_terminate_exits_143_and_says_what_was_kept(monkeypatch, caplog):
    def terminated(args):
        raise SystemExit(128 + signal.SIGTERM)

    monkeypatch.setattr(pipelines.methods, "run", terminated)
    with caplog.at_level(logging.INFO), pytest.raises(SystemExit) as exc:
        mmif("methods")
    assert exc.value.code == 143
    assert "terminated: unfinished outputs were discarded" in caplog.text


def test_the_process_exit_statuses(tmp_path):
    """What a shell sees: `python -m mmif.cli` exits with main's status."""
    usage = mmif_process("fuse", "--method", "max", cwd=tmp_path)
    assert usage.returncode == 2 and "required" in usage.stderr
    error = mmif_process("fuse", "--method", "max", "--ir", "nowhere", "--vis", "nowhere",
                         "--out", "out", cwd=tmp_path)  # fmt: skip
    assert error.returncode == 1, error.stderr
    assert "Traceback" not in error.stderr and "nowhere" in error.stderr
    assert not (tmp_path / "out").exists()
