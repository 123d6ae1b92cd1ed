"""Pixel statistics: SD, SF, AG of the fused image; CC, SCD, MSE, PSNR against the sources.

All values are on the 0..255 grey-level scale (see `metrics.inputs`); every function
returns a (B,) float64 tensor.

Grey levels take 256 values, so every statistic of a pixel pair is a sum over a joint
histogram: SD, CC, MSE and PSNR come from the (fused, source) counts that MI uses, SCD from
counts of (fused - one source, other source). Moments are centred sums over the bins in float64
(as accurate as two passes over the pixels, and exact for the integer sums of MSE).
"""

from __future__ import annotations

import torch

from metrics.filters import scratch, strip_rows
from metrics.information import (
    LEVELS,
    _bincount,
    _levels_int,
    fused_counts,
    joint_counts,
    level_values,
)
from metrics.inputs import Convention, Triple, check_convention, per_pair_sum


def _moments(counts: torch.Tensor, values: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """N x K counts of the values -> (mean, sum of squared deviations), each (N,)."""
    n = counts.sum(1)
    mean = counts @ values / n
    dev = values - mean[:, None]
    return mean, (counts * dev * dev).sum(1)


def _counts_pearson(
    joint: torch.Tensor, x_values: torch.Tensor, y_values: torch.Tensor
) -> torch.Tensor:
    """Pearson r of x and y from their N x X x Y joint counts -> (N,)."""
    mx, sxx = _moments(joint.sum(2), x_values)
    my, syy = _moments(joint.sum(1), y_values)
    dx = x_values - mx[:, None]
    dy = y_values - my[:, None]
    sxy = ((joint @ dy[:, :, None])[..., 0] * dx).sum(1)
    return sxy / torch.sqrt(sxx * syy)


def _sd(t: Triple) -> torch.Tensor:
    counts = fused_counts(t)
    _, ss = _moments(counts, level_values(counts))
    return torch.sqrt(ss / counts.sum(1))


def _sf(t: Triple) -> torch.Tensor:
    # first differences of grey levels and their squares are exact in int32, their sums in int64
    bsz = t.batch_size
    h, w = t.levels32().shape[-2:]
    f = _levels_int(t)[2 * bsz :].view(bsz, h, w)
    dx = f[..., :, 1:] - f[..., :, :-1]
    dy = f[..., 1:, :] - f[..., :-1, :]
    sx = dx.mul_(dx).flatten(1).sum(1).to(torch.float64) / dx[0].numel()
    sy = dy.mul_(dy).flatten(1).sum(1).to(torch.float64) / dy[0].numel()
    return torch.sqrt(sx + sy)


def _ag(t: Triple) -> torch.Tensor:
    f = t.levels32()[2 * t.batch_size :, 0]
    # numpy.gradient: central differences inside, one-sided at the borders. With 2 gx and 2 gy
    # (integers, exact in float32), the value is sqrt(((2 gx)^2 + (2 gy)^2) / 8)
    gx2 = torch.empty_like(f)
    torch.sub(f[..., :, 2:], f[..., :, :-2], out=gx2[..., :, 1:-1])
    torch.sub(f[..., :, 1:2], f[..., :, :1], out=gx2[..., :, :1]).mul_(2.0)
    torch.sub(f[..., :, -1:], f[..., :, -2:-1], out=gx2[..., :, -1:]).mul_(2.0)
    gy2 = torch.empty_like(f)
    torch.sub(f[..., 2:, :], f[..., :-2, :], out=gy2[..., 1:-1, :])
    torch.sub(f[..., 1:2, :], f[..., :1, :], out=gy2[..., :1, :]).mul_(2.0)
    torch.sub(f[..., -1:, :], f[..., -2:-1, :], out=gy2[..., -1:, :]).mul_(2.0)
    sq = gx2.square_().addcmul_(gy2, gy2)  # exact integers below 2**24
    # the square roots in float64 (the test of record compares to 1e-12), a band at a time
    h, w = f.shape[-2:]
    rows = strip_rows(f.shape[0] * w, f.device)
    total = torch.zeros(f.shape[0], dtype=torch.float64, device=f.device)
    for top in range(0, h, rows):
        band = sq[:, top : top + rows].to(torch.float64)
        total += band.mul_(0.125).sqrt_().sum(dim=(1, 2))
    return total / (h * w)


def _cc(t: Triple) -> torch.Tensor:
    values = level_values(joint_counts(t))
    r = _counts_pearson(joint_counts(t), values, values)
    return per_pair_sum(r, t.batch_size) / 2


def _scd(t: Triple) -> torch.Tensor:
    # r(F - B, A) + r(F - A, B): the difference image with one source removed, against the other,
    # from joint counts of (F - other source + 255, source): 511 x 256 bins per pair
    bsz = t.batch_size
    lv = _levels_int(t)
    sources = lv[: 2 * bsz].view(2, bsz, -1)
    bins = (2 * LEVELS - 1) * LEVELS
    n = 2 * bsz
    offset = bins * torch.arange(n, dtype=torch.int32, device=lv.device) + (LEVELS - 1) * LEVELS
    idx = scratch("scd.idx", (2, bsz, lv.shape[1]), torch.int32, lv.device)
    torch.sub(lv[2 * bsz :], lv[bsz : 2 * bsz], out=idx[0])  # F - vis, against ir
    torch.sub(lv[2 * bsz :], lv[:bsz], out=idx[1])  # F - ir, against vis
    idx.mul_(LEVELS).add_(sources).add_(offset.view(2, bsz, 1))
    joint = _bincount(idx, n, bins).view(n, 2 * LEVELS - 1, LEVELS)
    r = _counts_pearson(
        joint, level_values(joint, 2 * LEVELS - 1, 1.0 - LEVELS), level_values(joint)
    )
    return per_pair_sum(r, bsz)


def _mse(t: Triple) -> torch.Tensor:
    def compute() -> torch.Tensor:
        joint = joint_counts(t)
        values = level_values(joint)
        sq_diff = (values[:, None] - values[None, :]).square()
        # sums of integers below 2**53: exact, like the pixel sum
        err = joint.flatten(1) @ sq_diff.flatten() / joint.sum(dim=(1, 2))
        return per_pair_sum(err, t.batch_size) / 2

    return t.cached("mse", compute)


def _psnr(t: Triple, convention: Convention = "cddfuse") -> torch.Tensor:
    check_convention(convention)
    if convention == "cddfuse":
        counts = fused_counts(t)
        peak = ((counts > 0) * level_values(counts)).amax(1)
    else:
        peak = torch.full((t.batch_size,), 255.0, dtype=torch.float64, device=t.levels32().device)
    return 10.0 * torch.log10(peak * peak / _mse(t))


def sd(fused: torch.Tensor) -> torch.Tensor:
    """Standard deviation (population, ddof 0) of the fused grey levels, 0..127.5."""
    return _sd(Triple.from_unit(fused, fused, fused))


def sf(fused: torch.Tensor) -> torch.Tensor:
    """Spatial frequency: sqrt(mean squared horizontal + mean squared vertical first difference)."""
    return _sf(Triple.from_unit(fused, fused, fused))


def ag(fused: torch.Tensor) -> torch.Tensor:
    """Average gradient: mean of sqrt((Gx^2 + Gy^2) / 2) with numpy.gradient differences, >= 0."""
    return _ag(Triple.from_unit(fused, fused, fused))


def cc(ir: torch.Tensor, vis: torch.Tensor, fused: torch.Tensor) -> torch.Tensor:
    """Correlation coefficient (r(ir, F) + r(vis, F)) / 2, in [-1, 1]."""
    return _cc(Triple.from_unit(ir, vis, fused))


def scd(ir: torch.Tensor, vis: torch.Tensor, fused: torch.Tensor) -> torch.Tensor:
    """Sum of the correlations of differences r(F - vis, ir) + r(F - ir, vis), in [-2, 2]."""
    return _scd(Triple.from_unit(ir, vis, fused))


def mse(ir: torch.Tensor, vis: torch.Tensor, fused: torch.Tensor) -> torch.Tensor:
    """Mean squared error of F to each source, averaged over the two sources, 0..65025."""
    return _mse(Triple.from_unit(ir, vis, fused))


def psnr(
    ir: torch.Tensor, vis: torch.Tensor, fused: torch.Tensor, convention: Convention = "cddfuse"
) -> torch.Tensor:
    """Peak signal-to-noise ratio in dB against the source-averaged MSE.

    `cddfuse`: peak = max(F); `standard`: peak = 255. Infinite when F equals both sources.
    """
    return _psnr(Triple.from_unit(ir, vis, fused), convention)
