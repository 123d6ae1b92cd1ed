"""Turning metric inputs into grey levels, and the cache of intermediates shared by metrics.

Every metric is defined on 8-bit grey levels (METRICS.md): a B x C x H x W tensor in [0, 1] is
scaled by 255 and rounded, which is exact for images read from 8-bit files and is the precision
at which the pipeline stores fused images. Colour (C = 3) is reduced to its BT.601 luminance
Y = 0.299 R + 0.587 G + 0.114 B, rounded, like `mmif.io.rgb_to_grey_uint8`.

Grey levels are integers 0..255, exact in float32, so a `Triple` keeps them as one float32 stack
(ir, vis, fused). float32 input is converted in float32, exactly (see `_scaled32` and
`_luminance32`), a band of rows at a time so that the temporaries stay in cache.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Literal, TypeVar

import torch

from metrics.filters import scratch
from mmif.errors import InputError

Convention = Literal["cddfuse", "standard"]
CONVENTIONS: tuple[str, ...] = ("cddfuse", "standard")

#: images smaller than this (either side) cannot fill the largest window of the suite
MIN_SIDE = 11

T = TypeVar("T")


def check_convention(convention: str) -> None:
    if convention not in CONVENTIONS:
        raise InputError(
            f"unknown metric convention '{convention}'; use one of {', '.join(CONVENTIONS)}"
        )


def _channels_last(x: torch.Tensor) -> bool:
    """Whether x (B x C x H x W) is stored channels-last (an HWC array permuted to CHW, say):
    then x.permute(0, 2, 3, 1) is contiguous, and element-wise work runs in memory order."""
    return not x.is_contiguous() and x.is_contiguous(memory_format=torch.channels_last)


def _check_unit(x: torch.Tensor, name: str) -> None:
    """Raise unless x is a B x (1|3) x H x W float tensor (values are checked by `_levels`)."""
    if not isinstance(x, torch.Tensor) or x.ndim != 4:
        shape = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
        raise ValueError(f"{name}: expected a B x C x H x W tensor, got {shape}")
    if x.shape[1] not in (1, 3):
        raise ValueError(f"{name}: expected 1 (grey) or 3 (RGB) channels, got {x.shape[1]}")
    if not x.is_floating_point():
        raise TypeError(
            f"{name}: expected a float tensor in [0, 1], got {x.dtype}; divide 8-bit data by 255"
        )


def _check_range(lo: float, hi: float, name: str) -> None:
    # a little slack for values that left [0, 1] by float rounding only
    if not (lo >= -1e-3 and hi <= 1.0 + 1e-3):
        raise ValueError(
            f"{name}: values must lie in [0, 1] (found {lo:.4g}..{hi:.4g}); "
            "scale 8-bit images by 1/255 and clamp network outputs"
        )


def _levels64(x: torch.Tensor) -> torch.Tensor:
    """round(255 x) and the rounded luminance, in float64 (the definition)."""
    levels = (x.detach().to(torch.float64) * 255.0).round_().clamp_(0.0, 255.0)
    if levels.shape[1] == 3:
        r, g, b = levels[:, 0:1], levels[:, 1:2], levels[:, 2:3]
        levels = (r * 0.299 + g * 0.587 + b * 0.114).round_()
    return levels


def _scaled32(x: torch.Tensor) -> torch.Tensor | None:
    """round(255 x) of a float32 tensor computed in float32, or None if that may be inexact.

    The float32 product can differ from the exact one only by rounding onto a half-integer
    (a half-integer is exactly representable, and rounding is monotonic), so unless some
    product lands exactly on one, rounding it gives the exact result.
    """
    y = torch.mul(x.detach(), 255.0, out=scratch("levels.scaled", x.shape, x.dtype, x.device))
    levels = torch.round(y, out=scratch("levels.rounded", x.shape, x.dtype, x.device))
    frac = y.sub_(levels)
    if not (float(frac.amin()) > -0.5 and float(frac.amax()) < 0.5):
        return None
    # no clamp needed: inputs were checked to lie in [-0.001, 1.001], which round into 0..255
    return levels


def _luminance32(r: torch.Tensor, g: torch.Tensor, b: torch.Tensor, out: torch.Tensor) -> None:
    """Rounded BT.601 luminance of float32 grey levels (B x H x W each), written to out.

    S = 299 R + 587 G + 114 B + 500 is an exact integer in float32 and Y = floor(S / 1000)
    (S / 1000 is within 2e-5 of the exact quotient, which is an integer or at least 0.001 away
    from one). Only where the quotient is an integer, i.e. the definition's
    0.299 R + 0.587 G + 0.114 B is a half, does its rounding depend on the float64 expression,
    which is evaluated at those pixels.
    """
    s = scratch("levels.luminance", g.shape, g.dtype, g.device)
    torch.add(torch.tensor(500.0, dtype=g.dtype, device=g.device), g, alpha=587.0, out=s)
    s.add_(r, alpha=299.0).add_(b, alpha=114.0).div_(1000.0)
    torch.floor(s, out=out)
    frac = s.sub_(out)  # >= 0, and 0 exactly at the halves
    if float(frac.amin()) == 0.0:
        ties = torch.nonzero(frac == 0.0, as_tuple=True)
        rr, gg, bb = (c[ties].to(torch.float64) for c in (r, g, b))
        out[ties] = (rr * 0.299 + gg * 0.587 + bb * 0.114).round_().to(out.dtype)


#: entries of the input converted at once (fewer, larger chunks ran faster with two threads)
_CHUNK_ELEMENTS = 1 << 19


def _levels(x: torch.Tensor, out: torch.Tensor, name: str) -> None:
    """Grey levels of a B x C x H x W tensor (checked by `_check_unit`) into out (B x 1 x H x W
    float32), raising if its values leave [0, 1].

    float32 input is converted in float32, in chunks of rows (checked as they are read);
    anything else, or float32 input that `_scaled32` cannot round exactly, by `_levels64`.
    """
    x = x.detach()
    if x.dtype == torch.float32:
        last = _channels_last(x)
        dense = x.permute(0, 2, 3, 1) if last else x  # B x H x W x C or B x C x H x W
        rows = max(1, _CHUNK_ELEMENTS // max(1, x[:, :, 0].numel()))
        lo, hi = float("inf"), float("-inf")
        exact = True
        for top in range(0, x.shape[2], rows):
            part = dense[:, top : top + rows] if last else dense[:, :, top : top + rows]
            part_lo, part_hi = float(part.amin()), float(part.amax())
            lo = part_lo if math.isnan(part_lo) else min(lo, part_lo)  # nan sticks
            hi = part_hi if math.isnan(part_hi) else max(hi, part_hi)
            scaled = _scaled32(part) if exact else None
            if scaled is None:
                exact = False
                continue
            dest = out[:, 0, top : top + rows]
            if x.shape[1] == 1:
                dest.copy_(scaled[..., 0] if last else scaled[:, 0])
            elif last:
                _luminance32(scaled[..., 0], scaled[..., 1], scaled[..., 2], dest)
            else:
                _luminance32(scaled[:, 0], scaled[:, 1], scaled[:, 2], dest)
        _check_range(lo, hi, name)
        if exact:
            return
    else:
        lo, hi = (
            float(v) for v in torch.aminmax(x.permute(0, 2, 3, 1) if _channels_last(x) else x)
        )
        _check_range(lo, hi, name)
    out.copy_(_levels64(x))


def grey_levels(x: torch.Tensor, name: str = "image") -> torch.Tensor:
    """B x (1|3) x H x W float in [0, 1] -> B x 1 x H x W float64 grey levels (integers 0..255)."""
    _check_unit(x, name)
    out = torch.empty((x.shape[0], 1, *x.shape[2:]), dtype=torch.float32, device=x.device)
    _levels(x, out, name)
    return out.to(torch.float64)


def _check_shapes(ir: torch.Tensor, vis: torch.Tensor, fused: torch.Tensor) -> None:
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


class Triple:
    """Grey levels of infrared, visible and fused images plus a cache of shared intermediates.

    Built from B x 1 x H x W grey levels (integers 0..255, any float dtype) or, with `from_unit`,
    from images in [0, 1]. `levels32()` is the 3B x 1 x H x W float32 stack (ir, vis, fused);
    `ir`, `vis` and `fused` are float64 B x 1 x H x W views of a float64 copy made on first use.
    Metric families store what more than one metric needs (Sobel gradients, histograms, window
    statistics) with `cached`, so `compute_metrics` computes each of them once.
    """

    def __init__(self, ir: torch.Tensor, vis: torch.Tensor, fused: torch.Tensor):
        _check_shapes(ir, vis, fused)
        self._init(torch.cat([ir, vis, fused]).to(torch.float32), ir.shape[0])

    def _init(self, levels: torch.Tensor, batch_size: int) -> None:
        self._levels = levels
        self._batch_size = batch_size
        self._cache: dict[str, object] = {}
        #: metrics and convention the caller will ask for (`compute_on_triple` sets them), so
        #: that metric families computed in one pass can compute all their members at once
        self.requested: frozenset[str] = frozenset()
        self.convention: str = "cddfuse"

    @classmethod
    def from_unit(cls, ir: torch.Tensor, vis: torch.Tensor, fused: torch.Tensor) -> Triple:
        """Build from B x C x H x W tensors in [0, 1] (the public boundary convention)."""
        for x, name in ((ir, "ir"), (vis, "vis"), (fused, "fused")):
            _check_unit(x, name)
        if not (ir.device == vis.device == fused.device):
            raise ValueError(
                f"ir, vis and fused are on different devices ({ir.device}, {vis.device}, {fused.device})"
            )
        _check_shapes(ir, vis, fused)
        bsz = ir.shape[0]
        levels = torch.empty((3 * bsz, 1, *ir.shape[2:]), dtype=torch.float32, device=ir.device)
        for i, (x, name) in enumerate(((ir, "ir"), (vis, "vis"), (fused, "fused"))):
            _levels(x, levels[i * bsz : (i + 1) * bsz], name)
        triple = cls.__new__(cls)
        triple._init(levels, bsz)
        return triple

    @property
    def batch_size(self) -> int:
        return self._batch_size

    def levels32(self) -> torch.Tensor:
        """3B x 1 x H x W float32: ir, vis, fused grey levels (exact in float32)."""
        return self._levels

    def levels64(self) -> torch.Tensor:
        """3B x 1 x H x W float64: ir, vis, fused grey levels."""
        return self.cached("levels64", lambda: self._levels.to(torch.float64))

    @property
    def ir(self) -> torch.Tensor:
        return self.levels64()[: self._batch_size]

    @property
    def vis(self) -> torch.Tensor:
        return self.levels64()[self._batch_size : 2 * self._batch_size]

    @property
    def fused(self) -> torch.Tensor:
        return self.levels64()[2 * self._batch_size :]

    def cached(self, key: str, compute: Callable[[], T]) -> T:
        if key not in self._cache:
            self._cache[key] = compute()
        return self._cache[key]  # type: ignore[return-value]

    def is_cached(self, key: str) -> bool:
        return key in self._cache


def per_pair_sum(values: torch.Tensor, batch_size: int) -> torch.Tensor:
    """(2B,) values for (ir, fused) then (vis, fused) pairs -> (B,) sums of the two pairs."""
    return values[:batch_size] + values[batch_size:]


def row_sums(x: torch.Tensor) -> torch.Tensor:
    """Sum over all but the first dimension of an N x ... float32 map, accumulated in float64.

    Each row (last dimension) is summed in float32 first (pairwise, error about 1e-7 relative),
    then the row sums in float64: far more accurate than one float32 sum, without converting
    the whole map.
    """
    if x.dtype == torch.float64:
        return x.flatten(1).sum(1)
    if x.ndim == 2:
        return x.sum(1, dtype=torch.float64)
    return x.sum(-1).flatten(1).sum(1, dtype=torch.float64)
