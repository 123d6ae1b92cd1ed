"""Logs that read well in files (no carriage returns, no colour codes, no line glued onto a bar),
bars on a terminal, and safe loading of ultralytics models."""

from __future__ import annotations

import fcntl
import os
import pty
import re
import select
import struct
import subprocess
import sys
import termios
from pathlib import Path

import numpy as np
import pytest
import yaml
from cli_helpers import REPO, mmif_process, write_pairs
from PIL import Image

ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
TIMESTAMP = re.compile(r"^\d\d:\d\d:\d\d (INFO|WARNING|ERROR)")


def _clean_log(text: str) -> None:
    assert "\r" not in text, text[:2000]
    assert not ANSI.search(text), text[:2000]


def test_no_bar_updates_in_a_log_file(tmp_path, tiny_synthetic):
    write_pairs(tmp_path, [f"p{i}" for i in range(12)])
    proc = mmif_process("fuse", "--method", "max", "--ir", "ir", "--vis", "vis", "--out", "f", cwd=tmp_path)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    _clean_log(proc.stderr + proc.stdout)
    (tmp_path / "params.yaml").write_text(
        yaml.safe_dump(
            {
                "fusion": {
                    "densefuse": {
                        "epochs": 2,
                        "patches_per_step": 4,
                        "patch_size": 16,
                        "patches_per_image": 2,
                        "device": "cpu",
                    }
                }
            }
        )  # fmt: skip
    )
    proc = mmif_process("train", "--method", "densefuse", "--data", tiny_synthetic, "--out", "m", cwd=tmp_path)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    _clean_log(proc.stderr + proc.stdout)
    lines = proc.stderr.splitlines()
    assert all(TIMESTAMP.match(line) for line in lines), lines  # every line a whole log line
    assert sum("densefuse epoch" in line for line in lines) == 2


def _run_on_a_terminal(argv: list[str], cwd: Path) -> str:
    """stderr of `mmif ARGV` when it is a terminal (a pseudo-terminal), as written."""
    master, slave = pty.openpty()
    # a terminal of 100 columns (a bare pseudo-terminal reports 0, and tqdm draws nothing)
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 30, 100, 0, 0))
    proc = subprocess.Popen(
        [sys.executable, "-m", "mmif.cli", *argv],
        cwd=cwd,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=slave,
    )
    os.close(slave)
    chunks = []
    while True:
        ready, _, _ = select.select([master], [], [], 60)
        if not ready:
            break
        try:
            data = os.read(master, 65536)
        except OSError:  # the other end closed
            break
        if not data:
            break
        chunks.append(data)
    proc.wait(timeout=60)
    os.close(master)
    assert proc.returncode == 0, b"".join(chunks).decode(errors="replace")
    return b"".join(chunks).decode(errors="replace")


def test_bars_show_on_a_terminal_and_log_lines_stay_whole(tmp_path):
    write_pairs(tmp_path, [f"p{i}" for i in range(40)], h=64, w=64)
    # 16-bit infrared: each image logs a warning while the bar is on screen
    for path in (tmp_path / "ir").iterdir():
        grey = np.asarray(Image.open(path)).astype(np.uint16) * 257
        Image.fromarray(grey).save(path)
    text = _run_on_a_terminal(
        [
            "fuse",
            "--method",
            "max",
            "--ir",
            "ir",
            "--vis",
            "vis",
            "--out",
            "f",
            "--batch-size",
            "1",
        ],
        tmp_path,
    )
    assert "\r" in text and "fuse max" in text and "img" in text  # the bar is drawn
    assert text.count("scaled to 8 bits") == 40
    for line in text.replace("\r\n", "\n").split("\n"):
        if "INFO" in line or "WARNING" in line:
            shown = ANSI.sub("", line.rsplit("\r", 1)[-1]).strip()
            assert TIMESTAMP.match(shown), repr(line)  # not glued onto a bar


# ------------------------------------------------------------------ ultralytics


def _python(code: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True, text=True
    )


def test_stages_turn_on_ultralytics_safe_loading():
    env = {k: v for k, v in os.environ.items() if k != "ULTRALYTICS_SAFE_LOAD"}
    code = (
        "from detection.offline import import_ultralytics; import_ultralytics(); "
        "import ultralytics.utils as u; print(u.SAFE_LOAD)"
    )
    proc = _python(code, env)
    assert proc.returncode == 0 and proc.stdout.strip() == "True", proc.stderr


def test_a_pickled_model_cannot_run_code(tmp_path):
    """A .pt whose unpickling would run code: refused under safe loading. The same load without
    it runs the code, so the check can fail."""
    marker = tmp_path / "code_ran"
    evil = tmp_path / "evil.pt"
    code = (
        "import torch\n"
        "class Evil:\n"
        "    def __reduce__(self):\n"
        f"        return (open, ({str(marker)!r}, 'w'))\n"
        f"torch.save({{'model': Evil()}}, {str(evil)!r})\n"
    )
    assert _python(code, dict(os.environ)).returncode == 0
    load = (
        "from detection.offline import import_ultralytics; import_ultralytics()\n"
        "from ultralytics import YOLO\n"
        f"try:\n    YOLO({str(evil)!r})\nexcept Exception as exc:\n    print(type(exc).__name__)\n"
    )
    proc = _python(load, {**os.environ, "ULTRALYTICS_SAFE_LOAD": "1"})
    assert not marker.exists(), proc.stdout + proc.stderr
    proc = _python(load, {**os.environ, "ULTRALYTICS_SAFE_LOAD": "0"})
    assert marker.exists(), proc.stdout + proc.stderr


def test_seed_workers_get_safe_loading(monkeypatch, tmp_path):
    import argparse

    import pipelines.seed_runs as seed_runs

    seen = []

    class FakeProcess:
        def __init__(self, cmd, stdout, stderr, env):
            seen.append((cmd, env))

        def poll(self):
            return 0

    monkeypatch.delenv("ULTRALYTICS_SAFE_LOAD", raising=False)
    monkeypatch.setattr(seed_runs.subprocess, "Popen", FakeProcess)
    args = argparse.Namespace(
        method="m", out=tmp_path, data=tmp_path, fused=tmp_path, params="p.yaml", device=None
    )
    seed_runs.run_in_workers("detect", args, [0, 1], seed_runs.JobPlan(2, 1))
    assert len(seen) == 2
    assert all(env["ULTRALYTICS_SAFE_LOAD"] == "1" for _, env in seen)
    assert all("--seed-worker" in cmd for cmd, _ in seen)


@pytest.mark.skipif(
    __import__("torch").cuda.is_available(), reason="seeds run in worker processes on the CPU"
)
def test_yolo_worker_logs_read_well(tmp_path):
    """Two detection seeds in worker processes, on a dataset whose stems have spaces, brackets
    and accents: the per-seed logs hold whole lines only."""
    from test_cli_inputs import STEMS, _msrs

    _msrs(tmp_path / "msrs", {"train": STEMS, "test": ["test 1", "tést 2"]})
    params = {
        "seeds": [0, 1],
        "fusion": {"max": {}},
        "detect": {
            "protocol": "retrain",  # each seed trains in its own worker process
            "jobs": "auto",
            "workers": 0,
            "retrain": {"epochs": 1, "imgsz": 64, "batch": 4},
        },
    }
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    for argv in (
        [
            "prepare",
            "--dataset",
            "msrs",
            "--root",
            "msrs",
            "--det-labels",
            "msrs/det_labels",
            "--out",
            "prepared",
        ],  # fmt: skip
        ["fuse", "--method", "max", "--data", "prepared", "--out", "fused/max"],
        [
            "detect",
            "--method",
            "max",
            "--data",
            "prepared",
            "--fused",
            "fused/max",
            "--out",
            "det/max",
        ],  # fmt: skip
    ):
        proc = mmif_process(*argv, cwd=tmp_path)
        assert proc.returncode == 0, proc.stderr[-4000:]
    logs = sorted((tmp_path / "det" / "max" / "logs").glob("seed_*.log"))
    assert [p.name for p in logs] == ["seed_0.log", "seed_1.log"]
    for log in logs:
        text = log.read_text()
        _clean_log(text)
        assert "mAP50" in text
    for seed in (0, 1):
        assert (tmp_path / "det" / "max" / f"seed_{seed}" / "metrics.json").is_file()
