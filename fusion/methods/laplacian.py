"""Laplacian pyramid fusion (Burt & Adelson 1983; the fusion rule of Burt & Kolczynski 1993).

Each source is split into band-pass detail levels and a low-pass base with the 5-tap binomial
kernel; every detail coefficient is taken from the source with the larger magnitude, the bases
are averaged, and the pyramid is collapsed. Any H x W works: each level is ceil(H/2) x ceil(W/2)
of the one below and upsampling crops back, so the decomposition is exactly invertible.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F

from fusion.registry import FusionMethod, register

_BINOMIAL = torch.tensor([1.0, 4.0, 6.0, 4.0, 1.0], dtype=torch.float64) / 16.0


@dataclass
class LaplacianParams:
    """`fusion.laplacian` in params.yaml. levels: number of detail levels (>= 1)."""

    levels: int = 4

    def validate(self) -> None:
        if self.levels < 1:
            raise ValueError(f"levels must be >= 1, got {self.levels}")


def _blur_valid(x: torch.Tensor, gain: float = 1.0) -> torch.Tensor:
    """Separable 5-tap binomial filter without padding (output 4 smaller per axis)."""
    c = x.shape[1]
    k = (_BINOMIAL * gain).to(device=x.device, dtype=x.dtype)
    x = F.conv2d(x, k.view(1, 1, 1, 5).expand(c, 1, 1, 5), groups=c)
    return F.conv2d(x, k.view(1, 1, 5, 1).expand(c, 1, 5, 1), groups=c)


def pyr_down(x: torch.Tensor) -> torch.Tensor:
    """Blur and keep every second pixel: H x W -> ceil(H/2) x ceil(W/2)."""
    return _blur_valid(F.pad(x, (2, 2, 2, 2), mode="replicate"))[..., ::2, ::2]


def pyr_up(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Zero-insert and interpolate with the binomial kernel, cropped to `size` (<= 2x the input)."""
    b, c, h, w = x.shape
    # one replicated pixel on each side keeps the interpolation unbiased at the borders
    xp = F.pad(x, (1, 1, 1, 1), mode="replicate")
    z = x.new_zeros(b, c, 2 * (h + 2), 2 * (w + 2))
    z[..., ::2, ::2] = xp
    return _blur_valid(z, gain=2.0)[..., : size[0], : size[1]]


def laplacian_pyramid(x: torch.Tensor, levels: int) -> tuple[list[torch.Tensor], torch.Tensor]:
    """B x C x H x W -> (detail levels, finest first; low-pass base)."""
    details = []
    cur = x
    for _ in range(levels):
        nxt = pyr_down(cur)
        details.append(cur - pyr_up(nxt, cur.shape[-2:]))
        cur = nxt
    return details, cur


def collapse_pyramid(details: list[torch.Tensor], base: torch.Tensor) -> torch.Tensor:
    """Inverse of `laplacian_pyramid` (exact up to rounding)."""
    cur = base
    for d in reversed(details):
        cur = d + pyr_up(cur, d.shape[-2:])
    return cur


def laplacian_fuse(ir: torch.Tensor, vis: torch.Tensor, levels: int = 4) -> torch.Tensor:
    """Fuse B x 1 x H x W sources in [0, 1]: max-abs details, mean base; result clamped to [0, 1]."""
    n = ir.shape[0]
    details, base = laplacian_pyramid(torch.cat([ir, vis]), levels)
    fused = [torch.where(d[:n].abs() >= d[n:].abs(), d[:n], d[n:]) for d in details]
    return collapse_pyramid(fused, 0.5 * (base[:n] + base[n:])).clamp(0.0, 1.0)


class LaplacianFusion(FusionMethod):
    name = "laplacian"

    def __init__(self, params: LaplacianParams, device: torch.device):
        super().__init__(params, device)
        self.cfg = params

    def fuse_luminance(self, ir: torch.Tensor, vis: torch.Tensor) -> torch.Tensor:
        return laplacian_fuse(ir, vis, self.cfg.levels)


@register("laplacian", params=LaplacianParams)
def _laplacian(params: LaplacianParams, weights: Path | None, device: torch.device) -> FusionMethod:
    return LaplacianFusion(params, device)
