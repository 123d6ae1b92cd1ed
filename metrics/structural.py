"""Structural similarity: SSIM(F, ir) + SSIM(F, vis) and the mean MS-SSIM of F to each source.

Window statistics of the (source, fused) pairs are computed for both sources in one batch
(2B pairs: infrared ones first, then visible ones). The fused image's own statistics are
filtered once, and SSIM only needs the sum of the two variances, so each pair filters
x^2 + y^2 instead of x^2 and y^2: 7 filtered images per triple instead of 8. Everything runs
strip by strip of rows so that the products, window sums and maps stay in CPU caches.
"""

from __future__ import annotations

import logging

import torch
import torch.nn.functional as F

from metrics.filters import (
    box_sum_valid,
    filtered_strips,
    scratch,
    strip_rows,
)
from metrics.information import _levels_int
from metrics.inputs import Convention, Triple, check_convention, per_pair_sum
from mmif.kernels import gaussian_kernel1d

log = logging.getLogger(__name__)

#: MS-SSIM level weights (Wang, Simoncelli and Bovik 2003)
MS_SSIM_WEIGHTS = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)
#: MS-SSIM needs an 11-tap window after 4 halvings
MS_SSIM_MIN_SIDE = 161


def _pair_products(
    levels: torch.Tensor, bsz: int, dim: int, out: torch.Tensor | None = None
) -> torch.Tensor:
    """3B images along `dim` (sources x, then fused y) -> 7B (into `out` if given): x, y, then
    x^2 + y^2 and x y of the 2B (source, fused) pairs."""
    x = levels.narrow(dim, 0, 2 * bsz).unflatten(dim, (2, bsz))
    y = levels.narrow(dim, 2 * bsz, bsz).unflatten(dim, (1, bsz))
    if out is None:
        shape = list(levels.shape)
        shape[dim] = 7 * bsz
        out = levels.new_empty(shape)
    out.narrow(dim, 0, 3 * bsz).copy_(levels)
    squares = out.narrow(dim, 3 * bsz, 2 * bsz).unflatten(dim, (2, bsz))
    torch.mul(x, x, out=squares).addcmul_(y, y)
    torch.mul(x, y, out=out.narrow(dim, 5 * bsz, 2 * bsz).unflatten(dim, (2, bsz)))
    return out


def _pair_sums(x: torch.Tensor) -> torch.Tensor:
    """S x 2 x B x W map of the pairs -> (2B,) float64 sums (rows summed first, in x's dtype)."""
    return x.sum(-1).sum(0, dtype=torch.float64).view(-1)


def _box_ssim_sum(sums: torch.Tensor, bsz: int, n: int, c1: float, c2: float) -> torch.Tensor:
    """Sum of the SSIM map of a strip from its window sums (7B x S x W int32) -> (2B,) float64.

    With n pixels per window the terms are ratios of integers: luminance
    (2 Sx Sy + c1) / (Sx^2 + Sy^2 + c1), contrast-structure (2 (n Sxy - Sx Sy) + c2) /
    (n (Sxx + Syy) - Sx^2 - Sy^2 + c2), with C1 and C2 scaled to these denominators.
    """
    rest = sums.shape[1:]
    s = sums[: 3 * bsz]
    s_x, s_y = s[: 2 * bsz].view(2, bsz, *rest), s[2 * bsz :].view(1, bsz, *rest)
    sq = s * s
    lum_den = torch.add(sq[: 2 * bsz].view(2, bsz, *rest), sq[2 * bsz :].view(1, bsz, *rest))
    var_sum = sums[3 * bsz : 5 * bsz].view(2, bsz, *rest).mul(n).sub_(lum_den)
    prod = s_x * s_y
    cov2 = sums[5 * bsz :].view(2, bsz, *rest).mul(2 * n).sub_(prod, alpha=2)
    # the integers above are exact (below 2**31); adding the constants makes them float32
    c1_t, c2_t = (torch.tensor(c, dtype=torch.float32, device=sums.device) for c in (c1, c2))
    num = torch.add(c1_t, prod, alpha=2).mul_(torch.add(c2_t, cov2))
    den = torch.add(c1_t, lum_den).mul_(torch.add(c2_t, var_sum))
    ssim_map = num.div_(den)
    return ssim_map.sum(-1).sum(-1, dtype=torch.float64).view(-1)


def _ssim_cddfuse(t: Triple) -> torch.Tensor:
    # skimage's former defaults: 7x7 uniform window, sample covariance, data range 2 for float
    # input; the 3-pixel border it crops is exactly what 'valid' filtering drops. Window sums of
    # grey levels and of their products are integers (exact in int32), and so are the
    # numerators, so only the final products and quotient are rounded (float32). Strip by strip
    # of rows, so that the products and sums stay in cache.
    size = 7
    n = size * size
    c1 = (0.01 * 2.0) ** 2 * n * n  # C1 and C2 times the common denominators of the terms
    c2 = (0.03 * 2.0) ** 2 * n * (n - 1)
    bsz = t.batch_size
    h, w = t.levels32().shape[-2:]
    levels = _levels_int(t).view(3 * bsz, h, w)
    out_h, out_w = h - size + 1, w - size + 1
    total = torch.zeros(2 * bsz, dtype=torch.float64, device=levels.device)
    strip = strip_rows(2 * bsz * out_w, levels.device)
    for top in range(0, out_h, strip):
        rows = levels[:, top : top + min(strip, out_h - top) + size - 1]
        shape = (7 * bsz, *rows.shape[1:])
        products = _pair_products(
            rows, bsz, 0, scratch("ssim.products", shape, rows.dtype, rows.device)
        )
        sums = box_sum_valid(products, size, bound=2 * 255 * 255)
        total += _box_ssim_sum(sums, bsz, n, c1, c2)
    return per_pair_sum(total / (out_h * out_w), bsz)


def _gaussian_ssim_sums(
    images: torch.Tensor, bsz: int, c1: float, c2: float, with_ssim: bool, dtype: torch.dtype
) -> tuple[torch.Tensor, torch.Tensor | None, int]:
    """Sums of the contrast-structure map and (optionally) of the SSIM map of the 2B pairs,
    11-tap Gaussian window (sigma 1.5), and the number of window positions.

    images: H x 3B x W (sources, then fused; the layout of `filtered_strips`), any view; the
    statistics are computed in `dtype`.
    """
    taps = tuple(gaussian_kernel1d(11, 1.5).tolist())
    cs_sum = torch.zeros(2 * bsz, dtype=torch.float64, device=images.device)
    ssim_sum = torch.zeros_like(cs_sum) if with_ssim else None
    count = 0
    for stats in filtered_strips(
        images, lambda r, out: _pair_products(r, bsz, 1, out), 7 * bsz, taps, 2 * bsz, dtype
    ):
        rows, _, w = stats.shape
        count += rows * w
        mu = stats[:, : 3 * bsz]
        m_x, m_y = mu[:, : 2 * bsz].unflatten(1, (2, bsz)), mu[:, 2 * bsz :].unsqueeze(1)
        sq = mu * mu
        sq_sum = torch.add(sq[:, : 2 * bsz].unflatten(1, (2, bsz)), sq[:, 2 * bsz :].unsqueeze(1))
        var_sum = torch.sub(stats[:, 3 * bsz : 5 * bsz].unflatten(1, (2, bsz)), sq_sum).add_(c2)
        cs = torch.addcmul(stats[:, 5 * bsz :].unflatten(1, (2, bsz)), m_x, m_y, value=-1.0)
        cs.mul_(2.0).add_(c2).div_(var_sum)
        cs_sum += _pair_sums(cs)
        if ssim_sum is not None:
            lum = torch.mul(m_x, m_y).mul_(2.0).add_(c1).div_(sq_sum.add_(c1))
            ssim_sum += _pair_sums(cs.mul_(lum))
    return cs_sum, ssim_sum, count


def _ssim_standard(t: Triple) -> torch.Tensor:
    # Wang et al.: 11-tap Gaussian window (sigma 1.5), data range 255, in float64
    bsz = t.batch_size
    images = t.levels32()[:, 0].permute(1, 0, 2)  # integers: their products are exact
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    _, ssim_sum, count = _gaussian_ssim_sums(images, bsz, c1, c2, True, torch.float64)
    assert ssim_sum is not None
    return per_pair_sum(ssim_sum / count, bsz)


def _ssim(t: Triple, convention: Convention = "cddfuse") -> torch.Tensor:
    check_convention(convention)
    if convention == "cddfuse":
        return _ssim_cddfuse(t)
    return _ssim_standard(t)


def _halve(images: torch.Tensor) -> torch.Tensor:
    """2 x 2 average pooling of H x N x W images; an odd side gets a zero row or column first
    (that is what the reference's avg_pool2d with padding 1 uses: zeros count in the mean)."""
    h, _, w = images.shape
    if h % 2:
        images = F.pad(images, (0, 0, 0, 0, 1, 0))
    if w % 2:
        images = F.pad(images, (1, 0))
    rows = images[0::2] + images[1::2]
    return rows[..., 0::2].add_(rows[..., 1::2]).mul_(0.25)


def _full_float32_matmul(device: torch.device) -> bool:
    """Whether float32 matrix products (the Gaussian filters) keep float32 precision: not where
    the user allowed TF32 or bfloat16 shortcuts (then MS-SSIM filters in float64)."""
    if torch.get_float32_matmul_precision() != "highest":
        return False
    return not (device.type == "cuda" and torch.backends.cuda.matmul.allow_tf32)


def _ms_ssim(t: Triple) -> torch.Tensor:
    h, w = t.levels32().shape[-2:]
    bsz = t.batch_size
    if min(h, w) < MS_SSIM_MIN_SIDE:
        log.warning(
            "MS_SSIM needs images of at least %dx%d (got %dx%d); reporting NaN",
            MS_SSIM_MIN_SIDE,
            MS_SSIM_MIN_SIDE,
            h,
            w,
        )
        return torch.full((bsz,), float("nan"), dtype=torch.float64, device=t.levels32().device)
    # float32 like the reference (pytorch-msssim); its values agree to about 1e-5. The images
    # stay on the 0..255 scale with the constants scaled by 255^2 (the same ratios)
    images = t.levels32()[:, 0].permute(1, 0, 2)  # H x 3B x W
    dtype = torch.float32 if _full_float32_matmul(images.device) else torch.float64
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    weights = torch.tensor(MS_SSIM_WEIGHTS, dtype=torch.float64, device=images.device)
    factors = []
    for level in range(len(MS_SSIM_WEIGHTS)):
        last = level == len(MS_SSIM_WEIGHTS) - 1
        cs_sum, ssim_sum, count = _gaussian_ssim_sums(images, bsz, c1, c2, last, dtype)
        if last:
            assert ssim_sum is not None
            factors.append(torch.relu(ssim_sum / count))
        else:
            factors.append(torch.relu(cs_sum / count))
            images = _halve(images)
    value = torch.prod(torch.stack(factors) ** weights[:, None], dim=0)
    return per_pair_sum(value, bsz) / 2


def ssim(
    ir: torch.Tensor, vis: torch.Tensor, fused: torch.Tensor, convention: Convention = "cddfuse"
) -> torch.Tensor:
    """SSIM(F, ir) + SSIM(F, vis), each in [-1, 1].

    `cddfuse`: 7x7 uniform window, sample covariance, data range 2 (so the stabilising constants
    nearly vanish), mean over the 'valid' map. `standard`: Wang et al.: 11-tap Gaussian window
    (sigma 1.5), data range 255.
    """
    return _ssim(Triple.from_unit(ir, vis, fused), convention)


def ms_ssim(ir: torch.Tensor, vis: torch.Tensor, fused: torch.Tensor) -> torch.Tensor:
    """Mean of MS-SSIM(ir, F) and MS-SSIM(vis, F), in [0, 1]; NaN for sides below 161 pixels.

    5 levels, 11-tap Gaussian (sigma 1.5) on 0..1 data, as the pytorch-msssim package.
    """
    return _ms_ssim(Triple.from_unit(ir, vis, fused))
