"""Seconds per training epoch of the downstream tasks at the default size.

Renders a synthetic dataset (`SyntheticConfig` defaults: 256 x 192, 96 train /
16 val / 32 test pairs) in a temporary folder, uses the visible images as the fused ones and
trains the detector with params.yaml's `detect:` settings for a few epochs on CUDA when available
(else CPU). Prints the seconds of each epoch (training plus its validation, from ultralytics'
results.csv) and their median. Run it on a quiet machine:

    .venv/bin/python benchmarks/bench_tasks.py --epochs 3
    .venv/bin/python benchmarks/bench_tasks.py --epochs 1 --width 64 --height 48 --n-train 8   # smoke test
"""

from __future__ import annotations

import argparse
import csv
import logging
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

from detection.config import DetectConfig, ultralytics_device  # noqa: E402
from preparation.synthetic import SyntheticConfig, write_synthetic  # noqa: E402


def synthetic_task_data(root: Path, cfg: SyntheticConfig) -> tuple[Path, Path]:
    """prepared/ (synthetic scenes) and fused/vis/ (symlinks to the visible images)."""
    data = root / "prepared"
    write_synthetic(cfg, data, progress=False)
    fused = root / "fused" / "bench"
    for split in ("train", "val", "test"):
        if not (data / split).is_dir():
            continue
        (fused / split).mkdir(parents=True)
        for image in sorted((data / split / "vis").glob("*.png")):
            os.symlink(image.resolve(), fused / split / image.name)
    return data, fused


def pipeline_config(device: str, epochs: int) -> DetectConfig:
    """The shared detector's schedule of params.yaml (`detect.base`: what `dvc repro` trains under
    the default protocol), with epochs and device replaced."""
    import dataclasses

    from mmif.config import load_params

    params = load_params(Path(__file__).resolve().parents[1] / "params.yaml")
    cfg = params.detect.schedule("base")
    return dataclasses.replace(cfg, epochs=epochs, device=device, keep_run=True)


def detection_epoch_seconds(data: Path, fused: Path, cfg: DetectConfig) -> list[float]:
    """Train the pipeline's detector; the wall-clock seconds of each epoch (with its validation)."""
    from detection.offline import cache_root
    from detection.train import train_and_evaluate

    before = set((cache_root() / "detect").glob(f"{fused.name}-seed0-*"))
    out = data.parent / "out_detect"
    train_and_evaluate(fused, data, out, cfg, seed=0)
    runs = sorted(set((cache_root() / "detect").glob(f"{fused.name}-seed0-*")) - before)
    try:
        with (runs[-1] / "train" / "results.csv").open(newline="") as f:
            elapsed = [float(row["time"]) for row in csv.DictReader(f)]
    finally:
        for run in runs:
            shutil.rmtree(run, ignore_errors=True)
    return [b - a for a, b in zip([0.0, *elapsed[:-1]], elapsed, strict=True)]


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--device", default="auto", help="auto (CUDA when available), cpu, cuda, 0 ...")
    defaults = SyntheticConfig()
    p.add_argument("--width", type=int, default=defaults.width)
    p.add_argument("--height", type=int, default=defaults.height)
    p.add_argument("--n-train", type=int, default=defaults.n_train)
    args = p.parse_args()
    logging.basicConfig(level=logging.WARNING)

    synth = SyntheticConfig(width=args.width, height=args.height, n_train=args.n_train)
    synth.validate()
    device = ultralytics_device(args.device)
    tmp = Path(tempfile.mkdtemp(prefix="bench_tasks-"))
    try:
        start = time.perf_counter()
        data, fused = synthetic_task_data(tmp, synth)
        print(
            f"data: {synth.width}x{synth.height}, {synth.n_train}/{synth.n_val}/{synth.n_test} pairs "
            f"({time.perf_counter() - start:.1f} s to render)"
        )
        cfg = pipeline_config(args.device, args.epochs)
        seconds = detection_epoch_seconds(data, fused, cfg)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print(
        f"detection ({cfg.model}, imgsz {cfg.imgsz}, batch {cfg.batch}, device {device}): "
        f"epochs {', '.join(f'{s:.2f}' for s in seconds)} s; median {statistics.median(seconds):.2f} s/epoch"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
