"""DenseFuse training objective: MSE + ssim_weight * (1 - SSIM), images in [0, 1].

SSIM: the one loss SSIM of `fusion.losses` (11 x 11 Gaussian window, sigma 1.5, valid positions)
with DenseFuse's arithmetic (`DENSEFUSE`).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from fusion.losses import DENSEFUSE, ssim


def reconstruction_loss(
    output: torch.Tensor, target: torch.Tensor, ssim_weight: float
) -> tuple[torch.Tensor, dict[str, float]]:
    """Scalar loss and its parts {"pixel", "ssim"} (batch means)."""
    pixel = F.mse_loss(output, target)
    s = ssim(output, target, **DENSEFUSE).mean()
    loss = pixel + ssim_weight * (1.0 - s)
    return loss, {"pixel": float(pixel.detach()), "ssim": float(s.detach())}
