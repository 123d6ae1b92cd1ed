"""Information-theoretic metrics: EN and MI from 256-bin histograms of grey levels, and FMI_pixel.

Histograms are built with one `torch.bincount` per batch (each image's bins offset by its index),
so a whole batch costs one pass over the pixels. FMI's window machinery lives in
`fusion.metrics.fmi`.
"""

from __future__ import annotations

import math

import torch

from fusion.metrics.fmi import fmi_maps
from fusion.metrics.inputs import Convention, Triple, check_convention, per_pair_sum

LEVELS = 256


def _histograms(x: torch.Tensor) -> torch.Tensor:
    """N x 1 x H x W grey levels -> N x 256 pixel counts (float64)."""
    n = x.shape[0]
    idx = x.flatten(1).long() + LEVELS * torch.arange(n, device=x.device)[:, None]
    return torch.bincount(idx.flatten(), minlength=n * LEVELS).view(n, LEVELS).to(torch.float64)


def _joint_histograms(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Two N x 1 x H x W grey-level stacks -> N x 256 x 256 joint counts (rows x, columns y)."""
    n = x.shape[0]
    offset = LEVELS * LEVELS * torch.arange(n, device=x.device)[:, None]
    idx = x.flatten(1).long() * LEVELS + y.flatten(1).long() + offset
    counts = torch.bincount(idx.flatten(), minlength=n * LEVELS * LEVELS)
    return counts.view(n, LEVELS, LEVELS).to(torch.float64)


def _plogp(p: torch.Tensor) -> torch.Tensor:
    """p * ln(p) with 0 ln 0 = 0."""
    return torch.where(
        p > 0, p * torch.log(torch.where(p > 0, p, torch.ones_like(p))), torch.zeros_like(p)
    )


def _en(t: Triple) -> torch.Tensor:
    h = _histograms(t.fused)
    p = h / h.sum(dim=1, keepdim=True)
    return -_plogp(p).sum(dim=1) / math.log(2.0)


def _mi(t: Triple, convention: Convention = "cddfuse") -> torch.Tensor:
    check_convention(convention)
    joint = _joint_histograms(t.fused_twice(), t.sources())
    p = joint / joint.sum(dim=(1, 2), keepdim=True)
    # MI = H(X) + H(Y) - H(X, Y), in nats
    mi = (
        _plogp(p).sum(dim=(1, 2))
        - _plogp(p.sum(dim=2)).sum(dim=1)
        - _plogp(p.sum(dim=1)).sum(dim=1)
    )
    mi = mi.clamp_min(0.0)  # rounding can push an MI of independent images just below zero
    if convention == "standard":
        mi = mi / math.log(2.0)
    return per_pair_sum(mi, t.batch_size)


def en(fused: torch.Tensor) -> torch.Tensor:
    """Entropy of the fused image's 256-bin grey-level histogram, in bits, 0..8."""
    return _en(Triple.from_unit(fused, fused, fused))


def mi(
    ir: torch.Tensor, vis: torch.Tensor, fused: torch.Tensor, convention: Convention = "cddfuse"
) -> torch.Tensor:
    """Mutual information MI(F, ir) + MI(F, vis) from 256 x 256 joint histograms, >= 0.

    `cddfuse`: natural log (nats, as sklearn's mutual_info_score); `standard`: bits.
    """
    return _mi(Triple.from_unit(ir, vis, fused), convention)


def _fmi_pixel(t: Triple) -> torch.Tensor:
    maps = fmi_maps(t.ir, t.vis, t.fused)
    return maps.flatten(1).to(torch.float64).mean(1)


def fmi_pixel(ir: torch.Tensor, vis: torch.Tensor, fused: torch.Tensor) -> torch.Tensor:
    """Feature mutual information on raw pixels (Haghighat), 3x3 windows: mean over windows of
    (FMI(ir, F) + FMI(vis, F)) / 2, in [0, 1]. See `fusion.metrics.fmi` for the method."""
    return _fmi_pixel(Triple.from_unit(ir, vis, fused))
