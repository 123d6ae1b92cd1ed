"""Guided filtering fusion (GFF): Li, Kang, Hu, "Image Fusion With Guided Filtering", IEEE TIP 22(7), 2013.

1. Two-scale decomposition: base B_n = mean filter of the source (31 x 31), detail D_n = I_n - B_n.
2. Saliency S_n = Gaussian(|Laplacian(I_n)|), Gaussian window (2 r_g + 1)^2 with sigma_g.
3. Binary weight maps P_n: 1 where source n has the largest saliency.
4. The weights are refined by a guided filter with the source as guide: (r1, eps1) for the base
   layer, (r2, eps2) for the detail layer, and normalised to sum to one at every pixel.
5. Fused = sum_n W^B_n B_n + sum_n W^D_n D_n.

Defaults are the paper's (r1 = 45, eps1 = 0.3, r2 = 7, eps2 = 1e-6, r_g = sigma_g = 5), with
intensities in [0, 1]. The guided filter can overshoot slightly below zero near strong edges;
negative weights are clipped before normalising so the result stays a convex combination.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from fusion.filters import box_mean, gaussian_blur, guided_filter, laplacian3x3
from fusion.registry import FusionMethod, register


@dataclass
class GFFParams:
    """`fusion.gff` in params.yaml (defaults from Li, Kang, Hu 2013).

    base_size: side of the mean filter of the two-scale decomposition (odd, paper 31).
    saliency_radius, saliency_sigma: Gaussian smoothing of |Laplacian| (paper r_g = 5, sigma_g = 5).
    r1, eps1: guided filter for the base-layer weights (paper 45, 0.3).
    r2, eps2: guided filter for the detail-layer weights (paper 7, 1e-6; write 1.0e-6 in YAML).
    """

    base_size: int = 31
    saliency_radius: int = 5
    saliency_sigma: float = 5.0
    r1: int = 45
    eps1: float = 0.3
    r2: int = 7
    eps2: float = 1e-6

    def validate(self) -> None:
        if self.base_size < 1 or self.base_size % 2 == 0:
            raise ValueError(f"base_size must be a positive odd number, got {self.base_size}")
        if self.saliency_radius < 0 or self.saliency_sigma <= 0:
            raise ValueError("saliency_radius must be >= 0 and saliency_sigma > 0")
        if self.r1 < 1 or self.r2 < 1:
            raise ValueError(f"r1 and r2 must be >= 1, got r1={self.r1}, r2={self.r2}")
        if self.eps1 <= 0 or self.eps2 <= 0:
            raise ValueError(f"eps1 and eps2 must be > 0, got eps1={self.eps1}, eps2={self.eps2}")


def _normalise(weights: torch.Tensor) -> torch.Tensor:
    """N x B x 1 x H x W non-negative weights summing to one over N (equal where all are zero)."""
    w = weights.clamp(min=0.0)
    total = w.sum(dim=0, keepdim=True)
    equal = torch.full_like(w, 1.0 / w.shape[0])
    return torch.where(total > 1e-12, w / total.clamp(min=1e-12), equal)


def gff_fuse(ir: torch.Tensor, vis: torch.Tensor, p: GFFParams | None = None) -> torch.Tensor:
    """Fuse B x 1 x H x W sources in [0, 1] by guided filtering; result B x 1 x H x W in [0, 1]."""
    p = p or GFFParams()
    src = torch.stack([ir, vis]).double()  # N x B x 1 x H x W, N = 2 sources
    n, b = src.shape[:2]
    flat = src.flatten(0, 1)
    base = box_mean(flat, p.base_size // 2)
    detail = flat - base
    saliency = gaussian_blur(laplacian3x3(flat).abs(), p.saliency_radius, p.saliency_sigma)
    saliency = saliency.view(n, b, *flat.shape[1:])
    winner = (saliency == saliency.max(dim=0, keepdim=True).values).double()
    w_base = guided_filter(flat, winner.flatten(0, 1), p.r1, p.eps1).view_as(src)
    w_detail = guided_filter(flat, winner.flatten(0, 1), p.r2, p.eps2).view_as(src)
    fused = (_normalise(w_base) * base.view_as(src)).sum(0) + (
        _normalise(w_detail) * detail.view_as(src)
    ).sum(0)
    return fused.to(ir.dtype).clamp(0.0, 1.0)


class GFFFusion(FusionMethod):
    name = "gff"

    def __init__(self, params: GFFParams, device: torch.device):
        super().__init__(params, device)
        self.cfg = params

    def fuse_luminance(self, ir: torch.Tensor, vis: torch.Tensor) -> torch.Tensor:
        return gff_fuse(ir, vis, self.cfg)


@register("gff", params=GFFParams)
def _gff(params: GFFParams, weights: Path | None, device: torch.device) -> FusionMethod:
    return GFFFusion(params, device)
