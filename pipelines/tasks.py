"""Shared plumbing of the two downstream-task stages (detection and segmentation)."""

from __future__ import annotations

import argparse
import io
import logging
from pathlib import Path

import numpy as np

from mmif.data.layout import Manifest
from mmif.io import write_bytes, write_text
from pipelines.common import add_params_argument, write_json

log = logging.getLogger(__name__)


def add_task_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--method", required=True, help="fusion method whose fused images are used")
    p.add_argument("--seed", type=int, required=True, help="training seed")
    p.add_argument(
        "--data",
        type=Path,
        default=Path("data/prepared"),
        help="prepared dataset with labels (default: %(default)s)",
    )
    p.add_argument(
        "--fused", type=Path, required=True, help="the method's fused images (data/fused/NAME)"
    )
    p.add_argument("--out", type=Path, required=True, help="output folder for this method and seed")
    p.add_argument("--device", default=None, help="override params: cpu, cuda, 0,1 ...")
    add_params_argument(p)


def skip_reason(data: Path, fused: Path, needs: str) -> str | None:
    """Why this task cannot run on this dataset / method, or None."""
    manifest = Manifest.load(data)
    has = manifest.has_det_labels if needs == "det" else manifest.has_seg_masks
    if not has:
        what = "detection labels" if needs == "det" else "segmentation masks"
        return f"dataset '{manifest.name}' has no {what}"
    if not (fused / "train").is_dir():
        return f"{fused} holds no fused train split (an external method with test images only?)"
    return None


def write_skipped(out: Path, files: dict[str, str], reason: str, method: str, seed: int) -> None:
    """Write the declared outputs of a skipped task so DVC sees a complete stage."""
    log.warning("skipping %s seed %d: %s", method, seed, reason)
    for name, kind in files.items():
        path = out / name
        if kind == "json":
            write_json(path, {"skipped": True, "reason": reason, "method": method, "seed": seed})
        elif kind == "csv":
            write_text(path, "epoch\n")
        elif kind == "npz":
            buf = io.BytesIO()
            empty = np.array([], dtype=str)
            np.savez(buf, stems=empty, confusion=np.zeros((0, 0, 0), np.int64), class_names=empty)
            write_bytes(path, buf.getvalue())
