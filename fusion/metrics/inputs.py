"""Turning metric inputs into grey levels, and the cache of intermediates shared by metrics.

Every metric is defined on 8-bit grey levels (METRICS.md): a B x C x H x W tensor in [0, 1] is
scaled by 255 and rounded, which is exact for images read from 8-bit files and is the precision
at which the pipeline stores fused images. Colour (C = 3) is reduced to its BT.601 luminance
Y = 0.299 R + 0.587 G + 0.114 B, rounded, like `mmif.io.rgb_to_grey_uint8`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal, TypeVar

import torch

Convention = Literal["cddfuse", "standard"]
CONVENTIONS: tuple[str, ...] = ("cddfuse", "standard")

#: images smaller than this (either side) cannot fill the largest window of the suite
MIN_SIDE = 11

T = TypeVar("T")


def check_convention(convention: str) -> None:
    if convention not in CONVENTIONS:
        raise ValueError(
            f"unknown metric convention '{convention}'; use one of {', '.join(CONVENTIONS)}"
        )


def grey_levels(x: torch.Tensor, name: str = "image") -> torch.Tensor:
    """B x (1|3) x H x W float in [0, 1] -> B x 1 x H x W float64 grey levels (integers 0..255)."""
    if not isinstance(x, torch.Tensor) or x.ndim != 4:
        shape = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
        raise ValueError(f"{name}: expected a B x C x H x W tensor, got {shape}")
    if x.shape[1] not in (1, 3):
        raise ValueError(f"{name}: expected 1 (grey) or 3 (RGB) channels, got {x.shape[1]}")
    if not x.is_floating_point():
        raise TypeError(
            f"{name}: expected a float tensor in [0, 1], got {x.dtype}; divide 8-bit data by 255"
        )
    x = x.detach().to(torch.float64)
    lo, hi = torch.aminmax(x)
    # a little slack for values that left [0, 1] by float rounding only
    if not (lo >= -1e-3 and hi <= 1.0 + 1e-3):
        raise ValueError(
            f"{name}: values must lie in [0, 1] (found {float(lo):.4g}..{float(hi):.4g}); "
            "scale 8-bit images by 1/255 and clamp network outputs"
        )
    levels = (x * 255.0).round_().clamp_(0.0, 255.0)
    if levels.shape[1] == 3:
        r, g, b = levels[:, 0:1], levels[:, 1:2], levels[:, 2:3]
        levels = (r * 0.299 + g * 0.587 + b * 0.114).round_()
    return levels.contiguous()


class Triple:
    """Grey levels of infrared, visible and fused images plus a cache of shared intermediates.

    `ir`, `vis` and `fused` are B x 1 x H x W float64 tensors of grey levels 0..255 on the
    inputs' device. Metric families store what more than one metric needs (Sobel gradients,
    window statistics) with `cached`, so `compute_metrics` computes each of them once.
    """

    def __init__(self, ir: torch.Tensor, vis: torch.Tensor, fused: torch.Tensor):
        shapes = {"ir": ir.shape, "vis": vis.shape, "fused": fused.shape}
        if len({(s[0], *s[2:]) for s in shapes.values()}) != 1:
            raise ValueError(
                "ir, vis and fused must share batch size and height x width; got "
                + ", ".join(f"{k} {tuple(v)}" for k, v in shapes.items())
            )
        if min(ir.shape[-2:]) < MIN_SIDE:
            raise ValueError(
                f"images of {ir.shape[-2]}x{ir.shape[-1]} are too small; metrics need at least {MIN_SIDE}x{MIN_SIDE}"
            )
        self.ir = ir
        self.vis = vis
        self.fused = fused
        self._cache: dict[str, object] = {}

    @classmethod
    def from_unit(cls, ir: torch.Tensor, vis: torch.Tensor, fused: torch.Tensor) -> Triple:
        """Build from B x C x H x W tensors in [0, 1] (the public boundary convention)."""
        if not (ir.device == vis.device == fused.device):
            raise ValueError(
                f"ir, vis and fused are on different devices ({ir.device}, {vis.device}, {fused.device})"
            )
        return cls(grey_levels(ir, "ir"), grey_levels(vis, "vis"), grey_levels(fused, "fused"))

    @property
    def batch_size(self) -> int:
        return self.ir.shape[0]

    def levels32(self) -> torch.Tensor:
        """3B x 1 x H x W float32: ir, vis, fused grey levels (exact in float32)."""
        return self.cached(
            "levels32", lambda: torch.cat([self.ir, self.vis, self.fused]).to(torch.float32)
        )

    def sources(self) -> torch.Tensor:
        """2B x 1 x H x W: infrared images then visible ones (pairs with `fused_twice`)."""
        return self.cached("sources", lambda: torch.cat([self.ir, self.vis]))

    def fused_twice(self) -> torch.Tensor:
        return self.cached("fused_twice", lambda: torch.cat([self.fused, self.fused]))

    def cached(self, key: str, compute: Callable[[], T]) -> T:
        if key not in self._cache:
            self._cache[key] = compute()
        return self._cache[key]  # type: ignore[return-value]


def per_pair_sum(values: torch.Tensor, batch_size: int) -> torch.Tensor:
    """(2B,) values for (ir, fused) then (vis, fused) pairs -> (B,) sums of the two pairs."""
    return values[:batch_size] + values[batch_size:]


def pearson(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Pearson correlation of N x ... tensors over all but the first dimension -> (N,)."""
    x = x.flatten(1)
    y = y.flatten(1)
    xc = x - x.mean(dim=1, keepdim=True)
    yc = y - y.mean(dim=1, keepdim=True)
    return (xc * yc).sum(dim=1) / torch.sqrt((xc * xc).sum(dim=1) * (yc * yc).sum(dim=1))
