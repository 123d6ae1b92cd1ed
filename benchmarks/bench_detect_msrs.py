"""Acceptance check of the detection stage on real data: YOLO from scratch on MSRS visible images.

Reads ../shared/data/msrs_det200 (200 MSRS test pairs with YOLO labels: 0 person, 1 bicycle,
2 car) directly, splits the pairs into train/test with a seed, builds a temporary canonical
layout (symlinks, nothing copied into the repository) with the visible image as the "fused" one,
runs `detection.train.train_and_evaluate` and prints per-class AP50 and both mAP50s.

Expected: AP50 > 0 for person and car after a few CPU epochs, and the torchmetrics (COCO)
mAP50 within 0.02 of ultralytics'. The exit status is 1 when a check fails, 2 without the data.

    .venv/bin/python benchmarks/bench_detect_msrs.py --epochs 10 --imgsz 640 --train-size 160
"""

from __future__ import annotations

import argparse
import logging
import os
import random
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

from detection.config import DetectConfig  # noqa: E402
from mmif.layout import Manifest  # noqa: E402

MSRS = (REPO / ".." / "shared" / "data" / "msrs_det200").resolve()
CLASSES = ["person", "bicycle", "car"]
TOLERANCE = 0.02


def build_layout(source: Path, root: Path, train_size: int, seed: int) -> tuple[Path, Path]:
    """Canonical layout (prepared/ and fused/vis/) of symlinks into msrs_det200; returns (data, fused)."""
    stems = sorted(p.stem for p in (source / "test" / "vi").glob("*.png"))
    if not 0 < train_size < len(stems):
        raise SystemExit(f"--train-size must be between 1 and {len(stems) - 1}")
    random.Random(seed).shuffle(stems)
    splits = {"train": sorted(stems[:train_size]), "test": sorted(stems[train_size:])}
    data, fused = root / "prepared", root / "fused" / "vis"
    for split, names in splits.items():
        for sub in ("ir", "vis", "labels"):
            (data / split / sub).mkdir(parents=True)
        (fused / split).mkdir(parents=True)
        for stem in names:
            os.symlink(source / "test" / "ir" / f"{stem}.png", data / split / "ir" / f"{stem}.png")
            os.symlink(source / "test" / "vi" / f"{stem}.png", data / split / "vis" / f"{stem}.png")
            os.symlink(
                source / "test" / "det_labels" / f"{stem}.txt",
                data / split / "labels" / f"{stem}.txt",
            )
            os.symlink(source / "test" / "vi" / f"{stem}.png", fused / split / f"{stem}.png")
    Manifest(
        name="msrs_det200",
        provenance=f"{source} (random train/test split, seed {seed})",
        splits={k: len(v) for k, v in splits.items()},
        det_classes=CLASSES,
        image_sizes={"640x480": len(stems)},
        colour_visible=True,
        has_det_labels=True,
    ).save(data)
    return data, fused


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--imgsz", type=int, default=640)
    p.add_argument(
        "--train-size",
        type=int,
        default=160,
        help="pairs for training; the rest are the test split",
    )
    p.add_argument(
        "--batch",
        type=int,
        default=8,
        help="also the nominal batch size: one optimizer step per batch",
    )
    p.add_argument("--seed", type=int, default=0, help="split and training seed")
    p.add_argument("--device", default="auto")
    p.add_argument("--keep", action="store_true", help="keep the temporary layout and outputs")
    args = p.parse_args()
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)-7s %(name)s: %(message)s"
    )

    if not (MSRS / "test" / "vi").is_dir():
        print(f"skipped: {MSRS} not found (the team's ../shared/data is absent here)")
        return 2
    from detection.train import train_and_evaluate

    cfg = DetectConfig(
        epochs=args.epochs, imgsz=args.imgsz, batch=args.batch, nbs=args.batch, device=args.device
    )
    cfg.validate()
    tmp = Path(tempfile.mkdtemp(prefix="bench_detect_msrs-"))
    try:
        data, fused = build_layout(MSRS, tmp, args.train_size, args.seed)
        start = time.perf_counter()
        metrics = train_and_evaluate(fused, data, tmp / "out", cfg, seed=args.seed)
        seconds = time.perf_counter() - start
    finally:
        if args.keep:
            print(f"kept {tmp}")
        else:
            import shutil

            shutil.rmtree(tmp, ignore_errors=True)

    print(
        f"\nMSRS visible, {args.train_size} train / {200 - args.train_size} test pairs, {args.epochs} epochs "
        f"at {args.imgsz} px, {seconds:.0f} s"
    )
    print(f"{'class':10s} {'AP50':>8s} {'tm_AP50':>8s} {'AP50-95':>8s}")
    for name in CLASSES:
        c = metrics["per_class"][name]
        print(f"{name:10s} {_fmt(c['AP50'])} {_fmt(c['tm_AP50'])} {_fmt(c['AP50_95'])}")
    gap = abs(metrics["mAP50"] - metrics["tm_mAP50"])
    print(f"{'mAP50':10s} {_fmt(metrics['mAP50'])} {_fmt(metrics['tm_mAP50'])}   (gap {gap:.4f})")
    checks = {
        "person AP50 > 0": (metrics["per_class"]["person"]["AP50"] or 0) > 0,
        "car AP50 > 0": (metrics["per_class"]["car"]["AP50"] or 0) > 0,
        f"|mAP50 - tm_mAP50| <= {TOLERANCE}": gap <= TOLERANCE,
    }
    for label, ok in checks.items():
        print(f"{'PASS' if ok else 'FAIL'}  {label}")
    return 0 if all(checks.values()) else 1


def _fmt(value: float | None) -> str:
    return f"{value:8.4f}" if value is not None else f"{'-':>8s}"


if __name__ == "__main__":
    sys.exit(main())
