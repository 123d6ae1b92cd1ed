"""Fuse folders of image pairs with any registered method: batching, colour, atomic output."""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path

import torch

from fusion.registry import FusionMethod
from mmif.io import ImageError, read_image, to_tensor, to_uint8, write_image
from mmif.layout import SourcePair
from mmif.logging_utils import progress_bar

log = logging.getLogger(__name__)


def fuse_pairs(
    method: FusionMethod,
    pairs: Sequence[SourcePair],
    out_dir: Path,
    batch_size: int = 8,
    progress: bool = True,
    desc: str | None = None,
) -> int:
    """Fuse every pair and write `<out_dir>/<stem>.png`; same-size pairs are batched.

    The caller owns atomicity of `out_dir` (the stages write into a temporary folder).
    Returns the number of images written.
    """
    pending: dict[tuple, list[tuple[str, torch.Tensor, torch.Tensor]]] = defaultdict(list)
    n = 0
    bar = progress_bar(
        total=len(pairs), desc=desc or f"fuse {method.name}", unit="img", disable=not progress
    )
    for pair in pairs:
        ir = read_image(pair.ir)
        vis = read_image(pair.vis)
        if ir.shape[:2] != vis.shape[:2]:
            raise ImageError(
                f"{pair.ir} is {ir.shape[1]}x{ir.shape[0]} but {pair.vis} is {vis.shape[1]}x{vis.shape[0]}; "
                "register and resize the pair to the same size first (mmif prepare can resize when asked)"
            )
        key = (ir.shape, vis.shape)  # same size and channels: one batch
        pending[key].append((pair.stem, to_tensor(ir), to_tensor(vis)))
        if len(pending[key]) >= batch_size:
            n += _flush(method, pending.pop(key), out_dir)
            bar.update(batch_size)
    for key in list(pending):
        items = pending.pop(key)
        n += _flush(method, items, out_dir)
        bar.update(len(items))
    bar.close()
    return n


def _flush(
    method: FusionMethod, items: list[tuple[str, torch.Tensor, torch.Tensor]], out_dir: Path
) -> int:
    stems = [s for s, _, _ in items]
    ir = torch.cat([a for _, a, _ in items])
    vis = torch.cat([b for _, _, b in items])
    fused = method.fuse_batch(ir, vis, stems)
    for i, stem in enumerate(stems):
        write_image(out_dir / f"{stem}.png", to_uint8(fused[i]))
    return len(stems)
