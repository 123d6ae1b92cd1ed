"""Information-theoretic metrics: EN and MI from 256-bin histograms of grey levels, and FMI_pixel.

Histograms are built with one `torch.bincount` per batch (each image's bins offset by its index),
so a whole batch costs one pass over the pixels; the joint (fused, source) counts also give the
pixel statistics of `metrics.statistics`. FMI's window machinery lives in
`metrics.fmi`.
"""

from __future__ import annotations

import math

import torch

from metrics.filters import scratch
from metrics.fmi import fmi_maps
from metrics.inputs import Convention, Triple, check_convention, per_pair_sum

LEVELS = 256


def _levels_int(t: Triple) -> torch.Tensor:
    """3B x (H * W) int32 grey levels (ir, vis, fused), for histogram indices."""
    return t.cached("levels_int32", lambda: t.levels32().flatten(1).to(torch.int32))


def _bincount(idx: torch.Tensor, n: int, bins: int) -> torch.Tensor:
    """n x (any) int indices, row i already offset by i * bins -> n x bins float64 counts."""
    return torch.bincount(idx.flatten(), minlength=n * bins).view(n, bins).to(torch.float64)


def joint_counts(t: Triple) -> torch.Tensor:
    """2B x 256 x 256 joint counts of (fused level, source level): (F, ir) pairs, then (F, vis).

    One `bincount` for the whole batch (each pair's bins offset by its index). MI, EN and the
    pixel statistics (SD, CC, MSE, PSNR) are all functions of these counts.
    """

    def compute() -> torch.Tensor:
        bsz = t.batch_size
        lv = _levels_int(t)
        n = 2 * bsz
        offset = LEVELS * LEVELS * torch.arange(n, dtype=torch.int32, device=lv.device)
        idx = scratch("joint_counts.idx", (2, bsz, lv.shape[1]), torch.int32, lv.device)
        torch.add(lv[: 2 * bsz].view(2, bsz, -1), lv[2 * bsz :], alpha=LEVELS, out=idx)
        idx += offset.view(2, bsz, 1)
        return _bincount(idx, n, LEVELS * LEVELS).view(n, LEVELS, LEVELS)

    return t.cached("joint_counts", compute)


def fused_counts(t: Triple) -> torch.Tensor:
    """B x 256 grey-level counts of the fused images."""
    return t.cached("fused_counts", lambda: joint_counts(t)[: t.batch_size].sum(2))


def level_values(like: torch.Tensor, n: int = LEVELS, start: float = 0.0) -> torch.Tensor:
    """start, start + 1, ..., float64 on like's device."""
    return torch.arange(n, dtype=torch.float64, device=like.device) + start


def _plogp_sum(p: torch.Tensor, dims: tuple[int, ...]) -> torch.Tensor:
    """sum of p * ln(p) over dims, with 0 ln 0 = 0."""
    return torch.xlogy(p, p).sum(dim=dims)


def _en(t: Triple) -> torch.Tensor:
    h = fused_counts(t)
    p = h / h.sum(dim=1, keepdim=True)
    return -_plogp_sum(p, (1,)) / math.log(2.0)


def _mi(t: Triple, convention: Convention = "cddfuse") -> torch.Tensor:
    check_convention(convention)
    joint = joint_counts(t)
    p = joint / joint.sum(dim=(1, 2), keepdim=True)
    # MI = H(X) + H(Y) - H(X, Y), in nats
    mi = _plogp_sum(p, (1, 2)) - _plogp_sum(p.sum(dim=2), (1,)) - _plogp_sum(p.sum(dim=1), (1,))
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
    (FMI(ir, F) + FMI(vis, F)) / 2, in [0, 1]. See `metrics.fmi` for the method."""
    return _fmi_pixel(Triple.from_unit(ir, vis, fused))
