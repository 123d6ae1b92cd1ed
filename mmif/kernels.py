"""Convolution kernels shared by the fusion methods, their training losses and the metrics.

One home for the sampled Gaussian: `gaussian_kernel1d`. Its arithmetic (taps at integer
offsets from the centre, exp(-x^2 / (2 sigma^2)), divided by their sum) is done in the dtype
asked for, so every caller keeps the exact values it had: the metrics build their windows in
float64 (the published-number reproductions depend on them bit for bit), CoCoNet's loss in
float32.
"""

from __future__ import annotations

import torch


def gaussian_kernel1d(
    size: int,
    sigma: float,
    dtype: torch.dtype = torch.float64,
    device: torch.device | str | None = None,
) -> torch.Tensor:
    """Normalised 1-D Gaussian of `size` taps centred on the middle (odd `size`: a centre tap).

    Computed in `dtype` (default float64) on `device`. Raises ValueError for size < 1 or a
    sigma that is not positive.
    """
    if size < 1 or not sigma > 0:
        raise ValueError(f"Gaussian needs size >= 1 and sigma > 0, got size={size}, sigma={sigma}")
    x = torch.arange(size, dtype=dtype, device=device) - (size - 1) / 2.0
    g = torch.exp(-(x * x) / (2.0 * sigma * sigma))
    return g / g.sum()
