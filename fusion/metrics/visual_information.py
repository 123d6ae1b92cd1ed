"""Visual information fidelity (Sheikh and Bovik), multi-scale pixel-domain version.

Reported as VIF(ir, F) + VIF(vis, F) (reference = source, distorted = fused). The fused image's
pyramid and local statistics are shared by both pairs, and every Gaussian is applied as two 1-D
passes (the thresholded 2-D windows used here are exactly separable).
"""

from __future__ import annotations

import logging

import torch

from fusion.metrics.filters import separable_valid
from fusion.metrics.inputs import Triple, per_pair_sum

log = logging.getLogger(__name__)

NOISE_VARIANCE = 2.0
EPS = 1e-10


def _window(size: int) -> torch.Tensor:
    """1-D factor of the scale's 2-D Gaussian (sigma = size / 5, normalised to sum 1).

    The 2-D window zeroes values below float64 eps times its maximum; for the four sizes used
    (17, 9, 5, 3) nothing falls below it, which `_check_windows` confirms at import.
    """
    sigma = size / 5.0
    x = torch.arange(size, dtype=torch.float64) - (size - 1) / 2.0
    g = torch.exp(-(x * x) / (2.0 * sigma * sigma))
    return g / g.sum()


SCALES = (17, 9, 5, 3)
WINDOWS = {n: _window(n) for n in SCALES}


def _check_windows() -> None:
    for n, g in WINDOWS.items():
        h = torch.outer(g, g)
        if bool((h < torch.finfo(torch.float64).eps * h.max()).any()):
            raise AssertionError(f"VIF window {n} is not separable after thresholding")


_check_windows()


def _vif(t: Triple) -> torch.Tensor:
    bsz = t.batch_size
    h, w = t.fused.shape[-2:]
    if min(h, w) < SCALES[0]:
        log.warning(
            "VIF needs images of at least %dx%d (got %dx%d); reporting NaN",
            SCALES[0],
            SCALES[0],
            h,
            w,
        )
        return torch.full((bsz,), float("nan"), dtype=torch.float64, device=t.fused.device)
    images = torch.cat([t.ir, t.vis, t.fused])  # 3B: references, then the distorted image
    num = torch.zeros(2 * bsz, dtype=torch.float64, device=images.device)
    den = torch.zeros_like(num)
    for scale, size in enumerate(SCALES):
        win = WINDOWS[size].to(images.device)
        if scale > 0:
            if min(images.shape[-2:]) < size:
                break
            images = separable_valid(images, win)[..., ::2, ::2]
        if min(images.shape[-2:]) < size:
            break  # too small for this scale's window: it (and coarser ones) are left out
        ref, dist = images[: 2 * bsz], images[2 * bsz :].repeat(2, 1, 1, 1)
        stats = separable_valid(torch.cat([images, images * images], dim=1), win)
        mu, mom2 = stats[:, 0:1], stats[:, 1:2]
        cross = separable_valid(ref * dist, win)
        mu1, mu2 = mu[: 2 * bsz], mu[2 * bsz :].repeat(2, 1, 1, 1)
        var = (mom2 - mu * mu).clamp_min(0.0)
        s1, s2 = var[: 2 * bsz], var[2 * bsz :].repeat(2, 1, 1, 1)
        s12 = cross - mu1 * mu2

        gain = s12 / (s1 + EPS)
        sv = s2 - gain * s12
        flat_ref = s1 < EPS
        gain = torch.where(flat_ref, 0.0, gain)
        sv = torch.where(flat_ref, s2, sv)
        s1 = torch.where(flat_ref, 0.0, s1)
        flat_dist = s2 < EPS
        gain = torch.where(flat_dist, 0.0, gain)
        sv = torch.where(flat_dist, 0.0, sv)
        negative = gain < 0
        sv = torch.where(negative, s2, sv)
        gain = gain.clamp_min(0.0)
        sv = sv.clamp_min(EPS)

        num += torch.log10(1.0 + gain * gain * s1 / (sv + NOISE_VARIANCE)).flatten(1).sum(1)
        den += torch.log10(1.0 + s1 / NOISE_VARIANCE).flatten(1).sum(1)
    vif = num / den
    # a flat reference has no information to preserve: the evaluator reports 1 there
    vif = torch.where(torch.isnan(vif), torch.ones_like(vif), vif)
    return per_pair_sum(vif, bsz)


def vif(ir: torch.Tensor, vis: torch.Tensor, fused: torch.Tensor) -> torch.Tensor:
    """VIF(ir, F) + VIF(vis, F): 4 scales (Gaussian windows 17, 9, 5, 3), noise variance 2.

    Each term is about 1 for a perfect copy of the source and can exceed 1 for contrast gain.
    """
    return _vif(Triple.from_unit(ir, vis, fused))
