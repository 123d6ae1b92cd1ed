"""Structural similarity: SSIM(F, ir) + SSIM(F, vis) and the mean MS-SSIM of F to each source.

Window statistics of the (source, fused) pairs are computed for both sources in one batch
(2B images: infrared ones first, then visible ones).
"""

from __future__ import annotations

import logging

import torch
import torch.nn.functional as F

from fusion.metrics.filters import box_sum_valid, gaussian_1d, separable_valid
from fusion.metrics.inputs import Convention, Triple, check_convention, per_pair_sum

log = logging.getLogger(__name__)

#: MS-SSIM level weights (Wang, Simoncelli and Bovik 2003)
MS_SSIM_WEIGHTS = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)
#: MS-SSIM needs an 11-tap window after 4 halvings
MS_SSIM_MIN_SIDE = 161


def _pair_moments(sources: torch.Tensor, fused: torch.Tensor, window) -> tuple[torch.Tensor, ...]:
    """Windowed means (x, y, x^2, y^2, xy) of the 2B (source, fused) pairs.

    sources: 2B x 1 x H x W (ir then vis); fused: B x 1 x H x W, shared by both pairs, so its
    own moments are filtered once. `window(stack) -> filtered stack` works on dim 0 stacks.
    """
    bsz = fused.shape[0]
    pairs = fused.repeat(2, 1, 1, 1)
    stats = window(torch.cat([sources, fused, sources * sources, fused * fused, sources * pairs]))
    mx, my, mxx, myy, mxy = stats.split([2 * bsz, bsz, 2 * bsz, bsz, 2 * bsz])
    return mx, my.repeat(2, 1, 1, 1), mxx, myy.repeat(2, 1, 1, 1), mxy


def _ssim_terms(
    moments: tuple[torch.Tensor, ...], c1: float, c2: float, cov_norm: float = 1.0
) -> tuple[torch.Tensor, torch.Tensor]:
    """SSIM map and contrast-structure map from windowed moments."""
    mx, my, mxx, myy, mxy = moments
    vx = cov_norm * (mxx - mx * mx)
    vy = cov_norm * (myy - my * my)
    vxy = cov_norm * (mxy - mx * my)
    cs = (2.0 * vxy + c2) / (vx + vy + c2)
    luminance = (2.0 * mx * my + c1) / (mx * mx + my * my + c1)
    return luminance * cs, cs


def _ssim(t: Triple, convention: Convention = "cddfuse") -> torch.Tensor:
    check_convention(convention)
    if convention == "cddfuse":
        # skimage's former defaults: 7x7 uniform window, sample covariance, data range 2 for
        # float input; the 3-pixel border it crops is exactly what 'valid' filtering drops.
        # Window sums of grey levels and their products are exact in float32; the SSIM formula
        # (which subtracts nearly equal terms) runs in float64
        size, data_range = 7, 2.0
        levels = t.levels32()
        bsz = t.batch_size
        moments = _pair_moments(
            levels[: 2 * bsz],
            levels[2 * bsz :],
            lambda s: box_sum_valid(s, size).to(torch.float64) / (size * size),
        )
        ssim_map, _ = _ssim_terms(
            moments,
            (0.01 * data_range) ** 2,
            (0.03 * data_range) ** 2,
            size * size / (size * size - 1.0),
        )
    else:
        kernel = gaussian_1d(11, 1.5)
        moments = _pair_moments(
            t.sources()[: 2 * t.batch_size], t.fused, lambda s: separable_valid(s, kernel)
        )
        ssim_map, _ = _ssim_terms(moments, (0.01 * 255) ** 2, (0.03 * 255) ** 2)
    return per_pair_sum(ssim_map.flatten(1).mean(1), t.batch_size)


def _ms_ssim(t: Triple) -> torch.Tensor:
    h, w = t.fused.shape[-2:]
    if min(h, w) < MS_SSIM_MIN_SIDE:
        log.warning(
            "MS_SSIM needs images of at least %dx%d (got %dx%d); reporting NaN",
            MS_SSIM_MIN_SIDE,
            MS_SSIM_MIN_SIDE,
            h,
            w,
        )
        return torch.full((t.batch_size,), float("nan"), dtype=torch.float64, device=t.fused.device)
    # float32 like the reference (pytorch-msssim); its values agree to about 1e-5
    bsz = t.batch_size
    levels = t.levels32() / 255.0
    x, y = levels[: 2 * bsz], levels[2 * bsz :]
    kernel = gaussian_1d(11, 1.5, torch.float32)
    weights = torch.tensor(MS_SSIM_WEIGHTS, dtype=torch.float64, device=x.device)
    factors = []
    for level in range(len(MS_SSIM_WEIGHTS)):
        moments = _pair_moments(x, y, lambda s: separable_valid(s, kernel))
        ssim_map, cs_map = _ssim_terms(moments, 0.01**2, 0.03**2)
        if level < len(MS_SSIM_WEIGHTS) - 1:
            factors.append(torch.relu(cs_map.flatten(1).mean(1, dtype=torch.float64)))
            # the reference pads odd sides with zeros that count in the mean
            pad = (x.shape[-2] % 2, x.shape[-1] % 2)
            x = F.avg_pool2d(x, kernel_size=2, padding=pad)
            y = F.avg_pool2d(y, kernel_size=2, padding=pad)
        else:
            factors.append(torch.relu(ssim_map.flatten(1).mean(1, dtype=torch.float64)))
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
