"""Fusion metrics of folders of images matched by stem (`mmif metrics` calls this)."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch

from metrics.collection import FusionMetricCollection
from metrics.inputs import Convention, check_convention
from metrics.suite import resolve_names
from mmif.io import ImageError, list_images, read_image
from mmif.layout import pair_folders
from mmif.logging_utils import progress_bar
from mmif.runtime import resolve_device

if TYPE_CHECKING:  # only annotations: the table comes from FusionMetricCollection
    import pandas as pd

log = logging.getLogger(__name__)


def _load_triple(
    ir_path: Path, vis_path: Path, fused_path: Path
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    ir, vis, fused = read_image(ir_path), read_image(vis_path), read_image(fused_path)
    if ir.shape[:2] != vis.shape[:2]:
        raise ImageError(
            f"{vis_path}: size {vis.shape[1]}x{vis.shape[0]} differs from {ir_path} ({ir.shape[1]}x{ir.shape[0]}); the sources of a pair must match"
        )
    if fused.shape[:2] != ir.shape[:2]:
        raise ImageError(
            f"{fused_path}: size {fused.shape[1]}x{fused.shape[0]} differs from its sources "
            f"({ir.shape[1]}x{ir.shape[0]}); re-run the fusion for this image"
        )
    return ir, vis, fused


def _stack(arrays: list[np.ndarray]) -> torch.Tensor:
    """Same-shape uint8 images (H x W or H x W x 3) -> N x C x H x W float in [0, 1]."""
    stacked = np.stack(arrays)  # a fresh, writable array
    x = torch.from_numpy(stacked).to(torch.float32).div_(255.0)
    return x[:, None] if x.ndim == 3 else x.permute(0, 3, 1, 2)


def evaluate_folders(
    ir_dir: str | Path,
    vis_dir: str | Path,
    fused_dir: str | Path,
    names: Sequence[str] | None = None,
    convention: Convention = "cddfuse",
    device: str | torch.device = "cpu",
    progress: bool = True,
    batch_size: int = 8,
) -> pd.DataFrame:
    """Per-image metrics of every fused image in `fused_dir` against its two sources.

    Images are paired by stem whatever their extensions (`mmif.io.list_images`). Every source
    pair needs a fused image of the same size; fused images without sources are ignored with a
    warning. Consecutive images of one size are evaluated in batches of up to `batch_size`.
    device: "cpu", "cuda[:i]" or "auto" (CUDA when available).
    Returns the `FusionMetricCollection.compute()` table: `name` column, one column per metric,
    one row per image sorted by stem (means: `table_means`).
    """
    check_convention(convention)
    names = resolve_names(names)
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}")
    fused_dir = Path(fused_dir)
    pairs = pair_folders(Path(ir_dir), Path(vis_dir))
    fused = list_images(fused_dir)
    missing = [p.stem for p in pairs if p.stem not in fused]
    if missing:
        raise ImageError(
            f"no fused image for '{missing[0]}' in {fused_dir} (expected {fused_dir / (missing[0] + '.png')}; "
            f"{len(missing)} of {len(pairs)} missing); run the fusion for these images first"
        )
    extra = sorted(set(fused) - {p.stem for p in pairs})
    if extra:
        log.warning(
            "%s: %d fused image(s) have no source pair and are ignored (e.g. %s)",
            fused_dir,
            len(extra),
            fused[extra[0]].name,
        )

    device = resolve_device(device, "metrics device (--device or params.yaml metrics.device)")
    collection = FusionMetricCollection(names, convention)
    batch: list[tuple[str, np.ndarray, np.ndarray, np.ndarray]] = []

    def flush() -> None:
        if not batch:
            return
        ir, vis, fu = (_stack([b[i] for b in batch]).to(device) for i in (1, 2, 3))
        collection.update(ir, vis, fu, [b[0] for b in batch])
        batch.clear()

    for pair in progress_bar(
        pairs, desc=f"metrics {fused_dir.name}", unit="img", disable=not progress
    ):
        ir, vis, fu = _load_triple(pair.ir, pair.vis, fused[pair.stem])
        # a batch holds images of one size and one channel layout per role
        if batch and (batch[0][1].shape, batch[0][2].shape, batch[0][3].shape) != (
            ir.shape,
            vis.shape,
            fu.shape,
        ):
            flush()
        batch.append((pair.stem, ir, vis, fu))
        if len(batch) >= batch_size:
            flush()
    flush()
    return collection.compute()
