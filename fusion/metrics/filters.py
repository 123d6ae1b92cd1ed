"""Small 'valid' filters on N x 1 x H x W tensors, shared by the metric families.

They are written as sums of shifted slices instead of `conv2d`: for the short kernels used here
that is faster on CPU in float64 (no im2col), works on every device and dtype, and for integer
data with integer weights (box sums, Sobel) it is exact.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F


def gaussian_1d(size: int, sigma: float, dtype: torch.dtype = torch.float64) -> torch.Tensor:
    """Normalised 1-D Gaussian of `size` taps centred on the middle tap."""
    x = torch.arange(size, dtype=torch.float64) - (size - 1) / 2.0
    g = torch.exp(-(x * x) / (2.0 * sigma * sigma))
    return (g / g.sum()).to(dtype)


def _filter_axis(x: torch.Tensor, taps: list[float], dim: int) -> torch.Tensor:
    """'valid' correlation of x with a 1-D kernel along `dim` (sum of shifted slices)."""
    k = len(taps)
    n = x.shape[dim] - k + 1
    if n < 1:
        raise ValueError(f"image side {x.shape[dim]} is smaller than the {k}-tap window")
    out = x.narrow(dim, 0, n) * taps[0] if taps[0] != 1.0 else x.narrow(dim, 0, n).clone()
    for i in range(1, k):
        if taps[i] == 1.0:
            out.add_(x.narrow(dim, i, n))
        else:
            out.add_(x.narrow(dim, i, n), alpha=taps[i])
    return out


#: bytes of input a strip of `separable_valid` may span, so both passes run in cache
_STRIP_BYTES = 1 << 20


def separable_valid(x: torch.Tensor, kernel: torch.Tensor) -> torch.Tensor:
    """Filter N x C x H x W with kernel (x) kernel, 'valid' (output (H-K+1) x (W-K+1)).

    Large inputs are processed in horizontal strips (with K - 1 rows of overlap) so that the
    intermediate of the row pass is still in cache for the column pass.
    """
    taps = [float(t) for t in kernel]
    k = len(taps)
    h, w = x.shape[-2:]
    out_h = h - k + 1
    if out_h < 1 or w < k:
        raise ValueError(f"image of {h}x{w} is smaller than the {k}x{k} window")
    row_bytes = x.element_size() * w * x[..., 0, 0].numel()
    rows = max(8, _STRIP_BYTES // max(row_bytes, 1) - k + 1)
    if rows >= out_h:
        return _filter_axis(_filter_axis(x, taps, -1), taps, -2)
    out = x.new_empty((*x.shape[:-2], out_h, w - k + 1))
    for top in range(0, out_h, rows):
        bottom = min(top + rows, out_h)
        strip = x[..., top : bottom + k - 1, :]
        out[..., top:bottom, :] = _filter_axis(_filter_axis(strip, taps, -1), taps, -2)
    return out


def box_sum_valid(x: torch.Tensor, size: int) -> torch.Tensor:
    """Sum over every size x size window, 'valid'. Exact for integer data whose window sums
    stay below 2**24 in float32 (2**53 in float64)."""
    h, w = x.shape[-2:]
    if min(h, w) < size:
        raise ValueError(f"image of {h}x{w} is smaller than the {size}x{size} window")
    ones = [1.0] * size
    return _filter_axis(_filter_axis(x, ones, -1), ones, -2)


def sobel(x: torch.Tensor, padding: str) -> tuple[torch.Tensor, torch.Tensor]:
    """Sobel responses (sx, sy) of N x 1 x H x W, same size as x.

    sx = x convolved (true convolution, as scipy.signal.convolve2d) with
    [[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]], i.e. left column minus right column; sy likewise with
    [[1, 2, 1], [0, 0, 0], [-1, -2, -1]], i.e. bottom row minus top row. `padding` is
    "zeros" ('same' convolution with zero padding) or "reflect" (mirror without repeating the
    border pixel).
    """
    if padding == "zeros":
        p = F.pad(x, (1, 1, 1, 1))
    elif padding == "reflect":
        p = F.pad(x, (1, 1, 1, 1), mode="reflect")
    else:
        raise ValueError(f"unknown padding '{padding}'")
    h, w = x.shape[-2:]
    # vertical [1, 2, 1] smoothing of the horizontal difference, and the transpose
    dx = p[..., :, :w] - p[..., :, 2:]
    sx = dx[..., :h, :] + 2.0 * dx[..., 1 : h + 1, :] + dx[..., 2:, :]
    dy = p[..., 2:, :] - p[..., :h, :]
    sy = dy[..., :w] + 2.0 * dy[..., 1 : w + 1] + dy[..., 2:]
    return sx, sy


def arctan_ratio(num: torch.Tensor, den: torch.Tensor, where_zero: float) -> torch.Tensor:
    """arctan(num / den) in [-pi/2, pi/2], `where_zero` where den == 0 (MATLAB/numpy quirks)."""
    safe = torch.where(den == 0, torch.ones_like(den), den)
    return torch.where(den == 0, torch.full_like(den, where_zero), torch.atan(num / safe))


HALF_PI = math.pi / 2.0
