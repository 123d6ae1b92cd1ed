"""CoCoNet at inference: checkpoint loading, batched and tiled fusion, the registry method.

Images up to `tile_size` on both sides go through the network whole. Larger ones are cut into
overlapping tiles of `tile_size`, fused in batches, and blended with complementary sin^2 / cos^2
ramps across every overlap, so the blend weights sum to one everywhere and no seam can appear.
The network runs in eval mode under `torch.inference_mode`, with CUDA autocast when `amp` is set.
"""

from __future__ import annotations

import logging
import math
from pathlib import Path
from typing import Any

import torch

from fusion.coconet.config import CoCoNetConfig
from fusion.coconet.network import SIZE_MULTIPLE, CoCoNet, pad_to_multiple
from fusion.registry import FusionMethod
from mmif.errors import InputError, MissingInputError

log = logging.getLogger(__name__)


def load_coconet(
    path: str | Path, device: torch.device | str = "cpu"
) -> tuple[CoCoNet, dict[str, Any]]:
    """Load `coconet.pt` (or a training checkpoint `last.pt`) written by `train_coconet`.

    Returns the network in eval mode on `device` and the file's metadata (vgg_pretrained,
    config). The VGG19 weights come from the file, so no VGG19 weights file is needed here.
    """
    path = Path(path)
    if not path.is_file():
        raise MissingInputError(
            f"{path}: CoCoNet weights not found; train them first (`mmif train --method coconet`)"
        )
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise InputError(
            f"{path}: not a readable CoCoNet weights file ({exc}); re-run the training"
        ) from exc
    if not isinstance(ckpt, dict) or not isinstance(ckpt.get("model"), dict):
        raise InputError(
            f"{path}: no 'model' state dict; expected coconet.pt written by train_coconet"
        )
    with torch.random.fork_rng(
        devices=[]
    ):  # the throw-away initialisation leaves the global RNG alone
        model = CoCoNet(load_vgg=False)
    try:
        model.load_state_dict(ckpt["model"])
    except RuntimeError as exc:
        raise InputError(
            f"{path}: weights do not fit this CoCoNet ({str(exc).splitlines()[0]}); re-train"
        ) from exc
    meta = {"vgg_pretrained": model.vgg_pretrained, "config": ckpt.get("config")}
    return model.to(device).eval(), meta


def tile_starts(length: int, tile: int, overlap: int) -> list[int]:
    """Start offsets of tiles of size `tile` covering [0, length), neighbours overlapping >= `overlap`."""
    if length <= tile:
        return [0]
    n = math.ceil((length - overlap) / (tile - overlap))
    return [round(i * (length - tile) / (n - 1)) for i in range(n)]


def _axis_weights(
    starts: list[int], tile: int, length: int, device: torch.device
) -> list[torch.Tensor]:
    """Per-tile 1-D blend weights: cos^2 / sin^2 cross-fades over each actual overlap, 1 elsewhere."""
    size = min(tile, length)
    out = []
    for i, s in enumerate(starts):
        w = torch.ones(size, device=device)
        if i > 0:  # fade in over the overlap with the previous tile
            ov = starts[i - 1] + size - s
            t = (torch.arange(ov, device=device) + 0.5) / ov
            w[:ov] = torch.sin(0.5 * math.pi * t) ** 2
        if i + 1 < len(starts):  # fade out over the overlap with the next tile
            ov = s + size - starts[i + 1]
            t = (torch.arange(ov, device=device) + 0.5) / ov
            w[size - ov :] = w[size - ov :] * torch.cos(0.5 * math.pi * t) ** 2
        out.append(w)
    return out


def fuse_tiled(
    model: CoCoNet,
    ir: torch.Tensor,
    vis: torch.Tensor,
    tile_size: int,
    overlap: int,
    images_per_pass: int = 4,
) -> torch.Tensor:
    """Fuse B x 1 x H x W sources in [0, 1] tile by tile; returns B x 1 x H x W in [0, 1].

    The image is first reflect-padded to a multiple of 16 exactly as the network pads a whole
    image, so border tiles see the same surroundings as an untiled pass. Tiles of every image
    are batched together (`images_per_pass` image tiles per forward pass).
    """
    h0, w0 = ir.shape[-2:]
    padded, (top, left) = pad_to_multiple(torch.cat([ir, vis], dim=1), SIZE_MULTIPLE)
    ir, vis = padded[:, :1], padded[:, 1:]
    b, _, h, w = ir.shape
    ys, xs = tile_starts(h, tile_size, overlap), tile_starts(w, tile_size, overlap)
    th, tw = min(tile_size, h), min(tile_size, w)
    wy, wx = _axis_weights(ys, tile_size, h, ir.device), _axis_weights(xs, tile_size, w, ir.device)
    grid = [(i, j) for i in range(len(ys)) for j in range(len(xs))]
    out = torch.zeros(b, 1, h, w, device=ir.device, dtype=torch.float32)
    weight = torch.zeros(1, 1, h, w, device=ir.device, dtype=torch.float32)
    per_pass = max(1, images_per_pass // b)  # tiles per pass, each carrying the whole image batch
    for k in range(0, len(grid), per_pass):
        chunk = grid[k : k + per_pass]
        crops_ir = torch.cat([ir[..., ys[i] : ys[i] + th, xs[j] : xs[j] + tw] for i, j in chunk])
        crops_vis = torch.cat([vis[..., ys[i] : ys[i] + th, xs[j] : xs[j] + tw] for i, j in chunk])
        fused = model(crops_ir, crops_vis).float().split(b)
        for (i, j), f in zip(chunk, fused, strict=True):
            wt = wy[i].view(-1, 1) * wx[j].view(1, -1)
            out[..., ys[i] : ys[i] + th, xs[j] : xs[j] + tw] += f * wt
            weight[..., ys[i] : ys[i] + th, xs[j] : xs[j] + tw] += wt
    return (out / weight)[..., top : top + h0, left : left + w0]


def fuse_images(
    model: CoCoNet,
    ir: torch.Tensor,
    vis: torch.Tensor,
    tile_size: int = 1024,
    overlap: int = 64,
    images_per_pass: int = 4,
) -> torch.Tensor:
    """Fuse B x 1 x H x W sources in [0, 1], `images_per_pass` images (or tiles) per forward
    pass; returns B x 1 x H x W.

    Images larger than `tile_size` on either side are fused in blended tiles (`fuse_tiled`).
    """
    tiled = max(ir.shape[-2:]) > tile_size
    out = []
    n = images_per_pass
    for k in range(0, ir.shape[0], n):
        a, b = ir[k : k + n], vis[k : k + n]
        out.append(fuse_tiled(model, a, b, tile_size, overlap, n) if tiled else model(a, b))
    return torch.cat(out)


def autocast_dtype(device: torch.device, amp: bool) -> torch.dtype | None:
    """Reduced precision for CUDA inference: bfloat16 where supported, else float16; None on CPU."""
    if not amp or device.type != "cuda":
        return None
    return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16


class CoCoNetMethod(FusionMethod):
    """The `coconet` fusion method: a trained CoCoNet (or, without weights, an untrained one)."""

    name = "coconet"
    trainable = True

    def __init__(self, cfg: CoCoNetConfig, weights: Path | None, device: torch.device):
        super().__init__(cfg, device)
        self.cfg = cfg
        self.weights = Path(weights) if weights else None
        if self.weights is not None:
            self.model, meta = load_coconet(self.weights, self.device)
            self.trained_config = meta["config"]
        else:
            from fusion.coconet.train import build_model

            log.warning(
                "!!! CoCoNet WITHOUT WEIGHTS: no --weights given, so an UNTRAINED network fuses these "
                "images; its output means nothing. Train it first (`mmif train --method coconet`) and "
                "pass the coconet.pt it writes. !!!"
            )
            self.model = build_model(self.cfg, self.device).eval()
            self.trained_config = None
        self.amp_dtype = autocast_dtype(self.device, self.cfg.amp)

    def fuse_luminance(self, ir: torch.Tensor, vis: torch.Tensor) -> torch.Tensor:
        self.model.eval()
        with (
            torch.inference_mode(),
            torch.autocast(
                self.device.type,
                dtype=self.amp_dtype or torch.float32,
                enabled=self.amp_dtype is not None,
            ),
        ):
            fused = fuse_images(
                self.model,
                ir.to(self.device, torch.float32),
                vis.to(self.device, torch.float32),
                self.cfg.tile_size,
                self.cfg.tile_overlap,
                self.cfg.images_per_pass,
            )
            return fused.float().clamp_(0.0, 1.0)

    def info(self) -> dict[str, Any]:
        return {
            **super().info(),
            "weights": str(self.weights) if self.weights else None,
            "weights_loaded": self.weights is not None,
            "vgg_pretrained": self.model.vgg_pretrained,
            "tile_size": self.cfg.tile_size,
            "tile_overlap": self.cfg.tile_overlap,
            "amp": str(self.amp_dtype).replace("torch.", "") if self.amp_dtype else None,
        }
