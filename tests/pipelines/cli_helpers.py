"""Run `mmif` as a user would, on temporary folders, and fingerprint folders before and after."""

from __future__ import annotations

import contextlib
import hashlib
import io
import logging
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
from PIL import Image

REPO = Path(__file__).resolve().parents[2]


def tree_digest(root: Path) -> dict[str, str]:
    """relative path -> sha256 of every file (hidden ones too) and "<dir>" for every folder."""
    root = Path(root)
    if root.is_file():
        return {".": hashlib.sha256(root.read_bytes()).hexdigest()}
    out = {}
    for path in sorted(root.rglob("*")):
        rel = str(path.relative_to(root))
        out[rel] = "<dir>" if path.is_dir() else hashlib.sha256(path.read_bytes()).hexdigest()
    return out


def write_pairs(folder: Path, stems: list[str], h: int = 40, w: int = 48, seed: int = 0) -> None:
    """folder/ir/<stem>.png and folder/vis/<stem>.png, random grey images."""
    rng = np.random.default_rng(seed)
    for sub in ("ir", "vis"):
        (folder / sub).mkdir(parents=True, exist_ok=True)
        for stem in stems:
            arr = rng.integers(0, 256, (h, w), dtype=np.uint8)
            Image.fromarray(arr).save(folder / sub / f"{stem}.png")


@contextlib.contextmanager
def _captured_log():
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    try:
        yield stream
    finally:
        root.removeHandler(handler)
        root.setLevel(level)


def mmif(*argv: str | Path, cwd: Path | None = None) -> tuple[int, str]:
    """`mmif ARGV` in this process (from `cwd`); returns (exit status, log text)."""
    from mmif.cli import main

    old = Path.cwd()
    with _captured_log() as stream:
        try:
            if cwd is not None:
                os.chdir(cwd)
            status = main([str(a) for a in argv])
        finally:
            os.chdir(old)
    return status, stream.getvalue()


def error_lines(log: str) -> list[str]:
    return [line for line in log.splitlines() if line.startswith(("ERROR", "CRITICAL"))]


def mmif_process(
    *argv: str | Path, cwd: Path, env: dict | None = None, **kwargs
) -> subprocess.Popen | subprocess.CompletedProcess:
    """`mmif ARGV` in a new process (capture_output, text); `kwargs` go to subprocess.run."""
    return subprocess.run(
        [sys.executable, "-m", "mmif.cli", *map(str, argv)],
        cwd=cwd,
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        **kwargs,
    )


def start_mmif(*argv: str | Path, cwd: Path, **kwargs) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "mmif.cli", *map(str, argv)],
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        **kwargs,
    )
