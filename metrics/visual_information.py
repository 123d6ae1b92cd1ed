"""Visual information fidelity (Sheikh and Bovik), multi-scale pixel-domain version.

Reported as VIF(ir, F) + VIF(vis, F) (reference = source, distorted = fused). The fused image's
pyramid and local statistics are shared by both pairs, every Gaussian is applied as two 1-D
passes (the thresholded 2-D windows used here are exactly separable) by banded matrix products,
the pyramid's filter-and-decimate computes only the kept outputs, and the moments and per-pixel
terms are evaluated strip by strip of rows (`filtered_strips`), in CPU caches. All in float64:
the local variances subtract nearly equal moments.
"""

from __future__ import annotations

import logging
import math

import torch
import torch.nn.functional as F

from metrics.filters import filtered_strips, separable_hnw
from metrics.inputs import Triple, per_pair_sum
from mmif.kernels import gaussian_kernel1d

log = logging.getLogger(__name__)

NOISE_VARIANCE = 2.0
EPS = 1e-10
#: F.threshold keeps values above its threshold; this keeps exactly the values >= EPS
_BELOW_EPS = math.nextafter(EPS, 0.0)


def _window(size: int) -> torch.Tensor:
    """1-D factor of the scale's 2-D Gaussian (sigma = size / 5, normalised to sum 1).

    The 2-D window zeroes values below float64 eps times its maximum; for the four sizes used
    (17, 9, 5, 3) nothing falls below it, which `_check_windows` confirms at import.
    """
    return gaussian_kernel1d(size, size / 5.0)


SCALES = (17, 9, 5, 3)
WINDOWS = {n: _window(n) for n in SCALES}


def _check_windows() -> None:
    for n, g in WINDOWS.items():
        h = torch.outer(g, g)
        if bool((h < torch.finfo(torch.float64).eps * h.max()).any()):
            raise AssertionError(f"VIF window {n} is not separable after thresholding")


_check_windows()


def _moment_stack(images: torch.Tensor, bsz: int, out: torch.Tensor) -> None:
    """R x 3B x W rows of the references, then of the distorted images -> out (R x 8B x W
    float64): the images, their squares, and the products of each reference with its
    distorted image.

    images are float64, or float32 grey levels (integers: their products are exact)."""
    r, _, w = images.shape
    out[:, : 3 * bsz] = images
    torch.mul(images, images, out=out[:, 3 * bsz : 6 * bsz])
    torch.mul(
        images[:, : 2 * bsz].view(r, 2, bsz, w),
        images[:, 2 * bsz :].view(r, 1, bsz, w),
        out=out[:, 6 * bsz :].view(r, 2, bsz, w),
    )


def _strip_sums(stats: torch.Tensor, bsz: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Numerator and denominator sums (2B each) of a strip of windowed moments (S x 8B x W).

    Works in place on `stats`. The evaluator's clamps reduce to: a pixel adds
    log10(1 + g^2 s1 / (sv + noise)) to the numerator and log10(1 + s1 / noise) to the
    denominator, where s1 < eps counts as 0 (both terms 0), and g is 0 where it is negative or
    where s2 < eps (so the numerator term is 0 there, whatever sv is).
    """
    rows, _, w = stats.shape
    pairs = (rows, 2, bsz, w)
    mu, mom2, cross = stats[:, : 3 * bsz], stats[:, 3 * bsz : 6 * bsz], stats[:, 6 * bsz :]
    var = mom2.addcmul_(mu, mu, value=-1.0).clamp_min_(0.0)
    mu1, mu2 = mu[:, : 2 * bsz].view(pairs), mu[:, 2 * bsz :].view(rows, 1, bsz, w)
    s12 = cross.view(pairs).addcmul_(mu1, mu2, value=-1.0)
    s1 = F.threshold_(var[:, : 2 * bsz], _BELOW_EPS, 0.0).view(pairs)
    s2 = var[:, 2 * bsz :].view(rows, 1, bsz, w)
    one = torch.ones((), dtype=stats.dtype, device=stats.device)
    den = torch.add(one, s1, alpha=1.0 / NOISE_VARIANCE).log10_()
    # g = s12 / (s1 + eps), and 0 where s2 < eps: there the eps becomes eps / 0 = inf
    eps_or_inf = torch.div(EPS, F.threshold(s2, _BELOW_EPS, 0.0).sign_())
    gain = torch.add(s1, eps_or_inf)
    torch.div(s12, gain, out=gain).clamp_min_(0.0)
    # max(sv, eps) + noise = max(sv + noise, eps + noise) (rounding is monotonic)
    sv = torch.addcmul(s2 + NOISE_VARIANCE, gain, s12, value=-1.0)
    sv.clamp_min_(EPS + NOISE_VARIANCE)
    num = torch.addcdiv(one, gain.square_().mul_(s1), sv).log10_()
    return num.sum(dim=(0, 3)).view(-1), den.sum(dim=(0, 3)).view(-1)


def _vif(t: Triple) -> torch.Tensor:
    bsz = t.batch_size
    h, w = t.levels32().shape[-2:]
    if min(h, w) < SCALES[0]:
        log.warning(
            "VIF needs images of at least %dx%d (got %dx%d); reporting NaN",
            SCALES[0],
            SCALES[0],
            h,
            w,
        )
        return torch.full((bsz,), float("nan"), dtype=torch.float64, device=t.levels32().device)
    # H x 3B x W: references, then the distorted image (the layout of `filtered_strips`); the
    # grey levels as a view, the coarser scales float64
    images = t.levels32()[:, 0].permute(1, 0, 2)
    num = torch.zeros(2 * bsz, dtype=torch.float64, device=images.device)
    den = torch.zeros_like(num)
    for scale, size in enumerate(SCALES):
        win = tuple(WINDOWS[size].tolist())
        if scale > 0:
            if min(images.shape[0], images.shape[2]) < size:
                break
            images = separable_hnw(images, win, step=2, dtype=torch.float64)
        if min(images.shape[0], images.shape[2]) < size:
            break  # too small for this scale's window: it (and coarser ones) are left out
        for stats in filtered_strips(
            images, lambda r, out: _moment_stack(r, bsz, out), 8 * bsz, win, 2 * bsz, torch.float64
        ):
            n, d = _strip_sums(stats, bsz)
            num += n
            den += d
    vif = num / den
    # a flat reference has no information to preserve: the evaluator reports 1 there
    vif = torch.where(torch.isnan(vif), torch.ones_like(vif), vif)
    return per_pair_sum(vif, bsz)


def vif(ir: torch.Tensor, vis: torch.Tensor, fused: torch.Tensor) -> torch.Tensor:
    """VIF(ir, F) + VIF(vis, F): 4 scales (Gaussian windows 17, 9, 5, 3), noise variance 2.

    Each term is about 1 for a perfect copy of the source and can exceed 1 for contrast gain.
    """
    return _vif(Triple.from_unit(ir, vis, fused))
