"""Feature mutual information (Haghighat, Aghagolzadeh and Seyedarabi 2011), 3x3 windows.

For every 3x3 window the source and fused features are turned into 9-bin distributions
(min-max normalised, divided by their sum, in MATLAB's column-major order), a joint distribution
of each (source, fused) pair is built from Nelsen's construction, and the normalised mutual
information 2 MI / (H_S + H_F) is averaged over the windows and the two sources. The joint
distribution mixes the product of the marginals with a Frechet bound of their CDFs:

    J = theta * D + (1 - theta) * pF pS^T

with D the comonotone coupling (c >= 0, upper bound) or the countermonotone one (c < 0, lower
bound), c the Pearson correlation of the two 9-bin distributions and theta = c * sdS * sdF /
sum(bound - product of CDFs) (sd: spread of the bin index under each distribution).

Evaluating J on all 81 cells of every window is what makes reference implementations slow.
Here the windows' grey levels are integers, which makes everything exact and cheap:
- the product part's joint entropy has a closed form, -b log2|b| + b (H_S + H_F) with
  b = 1 - theta, so only the cells of D need a correction f(theta D + b q) - f(b q);
- D is nonzero only on the at most 17 cells where an interval of one CDF overlaps an interval of
  the other (a monotone staircase); the countermonotone coupling is the comonotone one with the
  source's bins reversed. Cross-multiplied by the other window's total, both CDFs are integers,
  so one comparison of the 9 x 9 breakpoints gives every breakpoint's rank among the other
  CDF's breakpoints, and each of the 18 breakpoints ends exactly one staircase cell;
- sum(min(cdfS_j, cdfF_k)) over all 81 pairs, needed for theta, equals the sum over the
  staircase of overlap * (9 - i) * (9 - j).
All steps are elementwise over windows (the last dimensions), in cache-sized chunks, so they
vectorise on CPU and GPU alike; float32 keeps the reference port's precision (about 1e-7 on
the mean; single sparse windows can be off by up to about 1e-4).

`fmi_maps` runs CPU tensors through the numba kernel of `metrics.fmi_cpu` (the same
algorithm window by window, in float64, about ten times faster on CPU) and other devices
through the torch path here (`fmi_maps_torch`), which also serves as a cross-check. Without
numba, CPU tensors take the torch path too (with a warning).
"""

from __future__ import annotations

import functools
import logging
import math
from collections.abc import Callable
from typing import Literal, NamedTuple

import torch

log = logging.getLogger(__name__)

WINDOW = 3
BINS = WINDOW * WINDOW
#: windows processed at once: small enough to stay in CPU caches, large on GPUs
CHUNK = 4096
CUDA_CHUNK = 1 << 18
_INV_LN2 = 1.0 / math.log(2.0)
_PAYLOAD = 256  # keys hold (cross-multiplied CDF numerator) * 256 + the bin's u (0..255)


class _Marginals(NamedTuple):
    """Per-window distribution of one image's 3x3 grey levels; windows along the last dimension.

    u = value - window minimum (all ones for a flat window), an integer 0..255 per bin; the
    window's pdf is u / total and its CDF cum / total. Float fields have the windows' dtype
    (float32, or float64 for cross-checks).
    """

    u: torch.Tensor  # 9 x M float32
    u_int: torch.Tensor  # 9 x M int32
    cum: torch.Tensor  # 9 x M int32, cumulative u (cum[8] = total)
    total: torch.Tensor  # M float32, sum(u) >= 1
    sum_sq: torch.Tensor  # M float32, sum(u^2)
    entropy: torch.Tensor  # M float32, bits
    spread: torch.Tensor  # M float32, sd of the bin index 1..9 under the pdf
    cdf_sum: torch.Tensor  # M float32, sum of the 9 CDF values


def windows(x: torch.Tensor, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """B x 1 x H x W grey levels -> 9 x (B * (H-2) * (W-2)) window values, column-major."""
    b, _, h, w = x.shape
    oh, ow = h - WINDOW + 1, w - WINDOW + 1
    x = x.to(dtype)
    views = [x[:, 0, di : di + oh, dj : dj + ow] for dj in range(WINDOW) for di in range(WINDOW)]
    return torch.stack(views).reshape(BINS, b * oh * ow)


def _sum_xlog2x(x: torch.Tensor) -> torch.Tensor:
    """sum over dim 0 of x * log2|x| (0 where x = 0)."""
    mag = x.abs().clamp_min_(torch.finfo(x.dtype).tiny).log2_()
    return (x * mag).sum(0)


def _bin_weights(device: torch.device) -> torch.Tensor:
    """Rows: 1..9, (1..9)^2, 9..1 (sum of the CDF = sum of (9 - k) u_k), ones."""
    k = torch.arange(1, BINS + 1, dtype=torch.float64, device=device)
    return torch.stack([k, k * k, k.flip(0), torch.ones_like(k)])


def marginals(v: torch.Tensor, weights: torch.Tensor) -> _Marginals:
    """Distributions of 9 x ... integer-valued windows (grey levels 0..255)."""
    lo = v.amin(0)
    flat = v.amax(0) == lo
    # subtracting (min - 1) on flat windows makes their u all ones: a uniform distribution
    u = v - (lo - flat.to(v.dtype))
    u_int = u.to(torch.int32)
    # exact integer sums; float64 so that reduced-precision float32 matmul settings (TF32,
    # set_float32_matmul_precision) cannot touch them
    sums = (weights @ u.reshape(BINS, -1).to(torch.float64)).to(v.dtype).view(4, *v.shape[1:])
    mean, mean_sq, cdf_sum, total = sums
    mean, mean_sq, cdf_sum = mean / total, mean_sq / total, cdf_sum / total
    # -sum(p log2 p) = (total log2 total - sum(u log2 u)) / total, exactly 0 for one nonzero bin
    # (the same product is subtracted), which two-valued windows such as (13, 0, ..., 0) need:
    # there both entropies are 0 and the window counts as a perfect match
    u_log_u = (u * u.clamp_min(1.0).log2_()).sum(0)
    entropy = (total * torch.log2(total) - u_log_u) / total
    return _Marginals(
        u=u,
        u_int=u_int,
        cum=u_int.cumsum(0, dtype=torch.int32),
        total=total,
        sum_sq=(u * u).sum(0),
        entropy=entropy,
        spread=torch.sqrt((mean_sq - mean * mean).abs_()),
        cdf_sum=cdf_sum,
    )


def pair_fmi(src: _Marginals, fus: _Marginals) -> torch.Tensor:
    """Normalised feature MI 2 MI / (H_S + H_F) of every window, in [0, 1] up to rounding.

    Marginals have shape 9 x ... (windows in the trailing dimensions); the fused one broadcasts
    against the source one (e.g. 9 x 2 x M sources, 9 x 1 x M fused).
    """
    n = float(BINS)
    # Pearson correlation of the two 9-bin distributions (u is a positive multiple of the pdf);
    # the covariance is an exact integer, so its sign is exact
    cov = n * (src.u * fus.u).sum(0) - src.total * fus.total
    var = (n * src.sum_sq - src.total * src.total) * (n * fus.sum_sq - fus.total * fus.total)
    corr = cov / torch.sqrt(var.clamp_min(1.0))
    positive = cov >= 0

    # a negative correlation couples F with the source's bins reversed (countermonotone bound)
    tot_f, tot_s = fus.cum[-1:], src.cum[-1:]
    u_s = torch.where(positive, src.u_int, src.u_int.flip(0))
    # reversed cumulative sums: total - cumsum of the bins left out
    cum_s = torch.where(positive, src.cum, torch.cat([tot_s - src.cum[:-1].flip(0), tot_s]))

    # CDF breakpoints on a common integer scale: cdfF_k = numF_k / (totF totS), same for S
    num_f = fus.cum * tot_s
    num_s = cum_s * tot_f
    shape = num_s.shape[1:]  # the windows' dimensions
    # every breakpoint ends one cell of the staircase (the coupling's support): the F breakpoint
    # k with r S breakpoints below it ends cell (k, r) (ties: F first), and conversely.
    # numF_k - numS_j is an integer (exact in float32), so clamping it to [0, 1] gives [S_j < F_k]
    dtype = src.u.dtype
    below = (num_f[:, None].to(dtype) - num_s[None].to(dtype)).clamp_(0.0, 1.0)
    rank_f = below.sum(1)  # S breakpoints below F_k (<= 8: S_8 is the maximum)
    rank_s = BINS - below.sum(0)  # F breakpoints at or below S_j
    # keys pack a breakpoint with its bin's u, so one gather brings both; F gets a padding bin
    key_s = num_s * _PAYLOAD + u_s
    key_f = torch.empty((BINS + 1, *shape), dtype=torch.int32, device=num_f.device)
    torch.add(num_f * _PAYLOAD, fus.u_int, out=key_f[:BINS])
    key_f[BINS] = tot_f[0] * tot_s[0] * _PAYLOAD
    other_s = key_s.gather(0, rank_f.long())  # the S breakpoint at or above F_k
    other_f = key_f.gather(0, rank_s.long())  # the F breakpoint above S_j (padding when none)
    u_other_s = other_s & (_PAYLOAD - 1)
    u_other_f = other_f & (_PAYLOAD - 1)
    # a cell starts at the larger of the breakpoints before its end (numF_k - uF_k totS = numF_k-1)
    start_f = torch.maximum(num_f - fus.u_int * tot_s, (other_s >> 8) - u_other_s * tot_f)
    start_s = torch.maximum(num_s - u_s * tot_f, (other_f >> 8) - u_other_f * tot_s)
    cells = (2 * BINS, *shape)
    overlap = torch.empty(cells, dtype=dtype, device=num_f.device)
    torch.sub(num_f, start_f, out=overlap[:BINS])
    torch.sub(num_s, start_s, out=overlap[BINS:])
    u_prod = torch.empty_like(overlap)
    torch.mul(fus.u_int, u_other_s, out=u_prod[:BINS])
    torch.mul(u_s, u_other_f, out=u_prod[BINS:])
    # sum over the 81 CDF pairs of min(cdfS_j, cdfF_k) = sum over cells of overlap * (9 - i)(9 - j)
    left = torch.arange(BINS, 0, -1, dtype=dtype, device=num_f.device).view(
        BINS, *([1] * len(shape))
    )
    weight = torch.empty_like(overlap)
    torch.mul(left, BINS - rank_f, out=weight[:BINS])
    torch.mul(BINS - rank_s, left, out=weight[BINS:])
    unit = 1.0 / (src.total * fus.total)  # overlaps and products are in these units
    sum_min = (overlap * weight).sum(0) * unit

    # theta = c sdS sdF / sum over the 81 CDF pairs of (Frechet bound - product)
    cdf_products = src.cdf_sum * fus.cdf_sum
    bound_sum = torch.where(positive, sum_min, (n + 1.0) * fus.cdf_sum - sum_min)
    denom = bound_sum - cdf_products
    denom = torch.where(denom == 0, torch.ones_like(denom), denom)
    # a zero correlation or spread gives theta = 0 (the product coupling)
    theta = corr * src.spread * fus.spread / denom
    rest = 1.0 - theta

    # joint entropy (bits) = sum over all 81 cells of f(rest * pF pS), f(x) = -x log2|x|, in
    # closed form, plus for the staircase cells f(theta * overlap + rest * q) - f(rest * q)
    both = src.entropy + fus.entropy
    log_unit = torch.log2(unit)
    mixed = torch.addcmul(rest * u_prod, theta, overlap)  # in units
    u_prod_sum = u_prod.sum(0)
    sum_mixed = theta / unit + rest * u_prod_sum
    sum_f_mixed = -unit * (_sum_xlog2x(mixed) + log_unit * sum_mixed)
    rest_log = torch.log2(rest.abs().clamp_min(torch.finfo(rest.dtype).tiny))
    q_log_q = (u_prod * u_prod.clamp_min(1.0).log2_()).sum(0)
    sum_f_product = -unit * rest * (q_log_q + (rest_log + log_unit) * u_prod_sum)
    joint = -rest * rest_log + rest * both + sum_f_mixed - sum_f_product

    # two single-valued windows (both entropies 0) count as a perfect match
    nfmi = 2.0 * (both - joint) / both.clamp_min(torch.finfo(both.dtype).tiny)
    return torch.where(both > 0, nfmi, torch.ones_like(nfmi))


def fmi_maps_torch(
    a: torch.Tensor,
    b: torch.Tensor,
    f: torch.Tensor,
    chunk: int | None = None,
    dtype: torch.dtype = torch.float32,
) -> torch.Tensor:
    """Per-window (FMI_AF + FMI_BF) / 2 of B x 1 x H x W grey levels -> B x (H-2) x (W-2), in
    torch on the inputs' device (dtype: float32, as the reference port, or float64).

    Windows are processed `chunk` at a time, both sources in one pass (sources stacked along a
    pair dimension that the fused image's distributions broadcast over).
    """
    bsz, _, h, w = f.shape
    if chunk is None:
        chunk = CHUNK if f.device.type == "cpu" else CUDA_CHUNK
    wa, wb, wf = windows(a, dtype), windows(b, dtype), windows(f, dtype)
    total = wf.shape[1]
    out = torch.empty(total, dtype=dtype, device=f.device)
    weights = _bin_weights(f.device)
    for start in range(0, total, chunk):
        stop = min(start + chunk, total)
        fused = marginals(wf[:, None, start:stop], weights)
        sources = marginals(torch.stack([wa[:, start:stop], wb[:, start:stop]], dim=1), weights)
        torch.mean(pair_fmi(sources, fused), dim=0, out=out[start:stop])
    return out.view(bsz, h - WINDOW + 1, w - WINDOW + 1)


@functools.cache
def _numba_maps() -> Callable[..., torch.Tensor] | None:
    """The numba kernel's entry point, or None (with a warning, once) if numba is missing."""
    try:
        from metrics.fmi_cpu import fmi_maps_cpu
    except ImportError as err:
        log.warning(
            "FMI_pixel on CPU falls back to the torch path, about ten times slower: "
            "numba cannot be imported (%s); install it with `pip install numba`",
            err,
        )
        return None
    return fmi_maps_cpu


def fmi_maps(
    a: torch.Tensor,
    b: torch.Tensor,
    f: torch.Tensor,
    chunk: int | None = None,
    backend: Literal["auto", "numba", "torch"] = "auto",
) -> torch.Tensor:
    """Per-window (FMI_AF + FMI_BF) / 2 of B x 1 x H x W grey levels -> B x (H-2) x (W-2) float32.

    backend "auto": the numba kernel for CPU tensors when numba is available, the torch path
    otherwise (always on GPUs); "numba" or "torch" forces one. chunk: windows per step of the
    torch path.
    """
    if backend not in ("auto", "numba", "torch"):
        raise ValueError(f"unknown FMI backend '{backend}'; use auto, numba or torch")
    if backend != "torch" and f.device.type == "cpu":
        numba_maps = _numba_maps()
        if numba_maps is not None:
            return numba_maps(a, b, f)
        if backend == "numba":
            raise RuntimeError("the numba FMI backend needs numba: pip install numba")
    elif backend == "numba":
        raise ValueError(f"the numba FMI backend runs on CPU tensors only, got {f.device}")
    return fmi_maps_torch(a, b, f, chunk)
