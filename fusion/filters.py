"""Image filters used by the classical fusion methods: box mean, Gaussian blur, Laplacian, guided filter.

All functions take B x C x H x W float tensors on any device and return a tensor of the same
shape, dtype and device. They work for any H, W >= 1 (windows are clipped at the image border,
or the border is replicated), so odd and tiny images need no special case.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from mmif.kernels import gaussian_kernel1d


def _box_sum_1d(x: torch.Tensor, r: int, dim: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Sum over the window [i - r, i + r] clipped to the tensor along `dim`, and the window length."""
    n = x.shape[dim]
    csum = torch.cumsum(x, dim=dim)
    zero = torch.zeros_like(csum.narrow(dim, 0, 1))
    csum = torch.cat([zero, csum], dim=dim)  # csum[k] = sum of the first k entries
    idx = torch.arange(n, device=x.device)
    hi = (idx + r + 1).clamp(max=n)
    lo = (idx - r).clamp(min=0)
    total = csum.index_select(dim, hi) - csum.index_select(dim, lo)
    return total, (hi - lo).to(x.dtype)


def box_mean(x: torch.Tensor, r: int) -> torch.Tensor:
    """Mean over the (2r + 1) x (2r + 1) window around each pixel, clipped to the image.

    Border pixels average only the pixels inside the image (the normalisation of He et al.'s guided
    filter), so a constant image stays constant. O(1) per pixel via cumulative sums, computed in
    float64 because the guided filter subtracts nearly equal box means (eps down to 1e-6).
    """
    if r < 0:
        raise ValueError(f"box radius must be >= 0, got {r}")
    if r == 0:
        return x.clone()
    xd = x.double()
    s, n_h = _box_sum_1d(xd, r, dim=-2)
    s, n_w = _box_sum_1d(s, r, dim=-1)
    count = n_h.view(-1, 1) * n_w.view(1, -1)
    return (s / count).to(x.dtype)


def _conv_same(x: torch.Tensor, kernel: torch.Tensor) -> torch.Tensor:
    """Depthwise 2-D convolution with replicated borders; kernel is kh x kw (odd sizes)."""
    c = x.shape[1]
    kh, kw = kernel.shape
    xp = F.pad(x, (kw // 2, kw // 2, kh // 2, kh // 2), mode="replicate")
    weight = kernel.to(device=x.device, dtype=x.dtype).expand(c, 1, kh, kw)
    return F.conv2d(xp, weight, groups=c)


def gaussian_blur(x: torch.Tensor, radius: int, sigma: float) -> torch.Tensor:
    """Separable Gaussian low-pass with a (2 radius + 1)^2 window and replicated borders."""
    k = gaussian_kernel1d(2 * radius + 1, sigma)
    return _conv_same(_conv_same(x, k.view(1, -1)), k.view(-1, 1))


_LAPLACIAN_3x3 = torch.tensor(
    [[0.0, 1.0, 0.0], [1.0, -4.0, 1.0], [0.0, 1.0, 0.0]], dtype=torch.float64
)


def laplacian3x3(x: torch.Tensor) -> torch.Tensor:
    """4-neighbour discrete Laplacian with replicated borders (zero on a constant image)."""
    return _conv_same(x, _LAPLACIAN_3x3)


def guided_filter(guide: torch.Tensor, src: torch.Tensor, r: int, eps: float) -> torch.Tensor:
    """Grey-guide guided filter (He, Sun, Tang, ECCV 2010 / TPAMI 2013).

    guide: B x 1 x H x W (or B x C, filtered channel by channel), src: same shape; values
    typically in [0, 1], which is the scale `eps` refers to. Returns the filtered `src`.
    Computed in float64 (see `box_mean`) and cast back to `src`'s dtype.
    """
    if guide.shape != src.shape:
        raise ValueError(f"guide {tuple(guide.shape)} and input {tuple(src.shape)} differ in shape")
    if eps <= 0 or not math.isfinite(eps):
        raise ValueError(f"guided filter eps must be > 0, got {eps}")
    i, p = guide.double(), src.double()
    mean_i = box_mean(i, r)
    mean_p = box_mean(p, r)
    cov_ip = box_mean(i * p, r) - mean_i * mean_p
    var_i = box_mean(i * i, r) - mean_i * mean_i
    a = cov_ip / (var_i + eps)
    b = mean_p - a * mean_i
    return (box_mean(a, r) * i + box_mean(b, r)).to(src.dtype)
