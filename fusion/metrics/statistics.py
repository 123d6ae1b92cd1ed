"""Pixel statistics: SD, SF, AG of the fused image; CC, SCD, MSE, PSNR against the sources.

All values are on the 0..255 grey-level scale (see `fusion.metrics.inputs`); every function
returns a (B,) float64 tensor.
"""

from __future__ import annotations

import torch

from fusion.metrics.inputs import Convention, Triple, check_convention, pearson, per_pair_sum


def _sd(t: Triple) -> torch.Tensor:
    return t.fused.flatten(1).std(dim=1, correction=0)


def _sf(t: Triple) -> torch.Tensor:
    f = t.fused
    dx = f[..., :, 1:] - f[..., :, :-1]
    dy = f[..., 1:, :] - f[..., :-1, :]
    return torch.sqrt(dx.square().flatten(1).mean(1) + dy.square().flatten(1).mean(1))


def _ag(t: Triple) -> torch.Tensor:
    f = t.fused
    # numpy.gradient: central differences inside, one-sided at the borders
    gx = torch.cat(
        [
            f[..., :, 1:2] - f[..., :, :1],
            (f[..., :, 2:] - f[..., :, :-2]) / 2,
            f[..., :, -1:] - f[..., :, -2:-1],
        ],
        dim=-1,
    )
    gy = torch.cat(
        [
            f[..., 1:2, :] - f[..., :1, :],
            (f[..., 2:, :] - f[..., :-2, :]) / 2,
            f[..., -1:, :] - f[..., -2:-1, :],
        ],
        dim=-2,
    )
    return torch.sqrt((gx * gx + gy * gy) / 2).flatten(1).mean(1)


def _cc(t: Triple) -> torch.Tensor:
    return per_pair_sum(pearson(t.sources(), t.fused_twice()), t.batch_size) / 2


def _scd(t: Triple) -> torch.Tensor:
    # r(F - B, A) + r(F - A, B): the difference image with one source removed, against the other
    diffs = torch.cat([t.fused - t.vis, t.fused - t.ir])
    return per_pair_sum(pearson(diffs, t.sources()), t.batch_size)


def _mse(t: Triple) -> torch.Tensor:
    def compute() -> torch.Tensor:
        err = (t.sources() - t.fused_twice()).square().flatten(1).mean(1)
        return per_pair_sum(err, t.batch_size) / 2

    return t.cached("mse", compute)


def _psnr(t: Triple, convention: Convention = "cddfuse") -> torch.Tensor:
    check_convention(convention)
    if convention == "cddfuse":
        peak = t.fused.flatten(1).amax(1)
    else:
        peak = torch.full((t.batch_size,), 255.0, dtype=t.fused.dtype, device=t.fused.device)
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
