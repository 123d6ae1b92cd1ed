"""DenseFuse training objective: MSE + ssim_weight * (1 - SSIM), images in [0, 1]."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from fusion.filters import gaussian_kernel1d

_C1 = 0.01**2
_C2 = 0.03**2


def ssim(x: torch.Tensor, y: torch.Tensor, radius: int = 5, sigma: float = 1.5) -> torch.Tensor:
    """Mean SSIM (Wang et al. 2004) per image, B x C x H x W in [0, 1] -> B; differentiable.

    11 x 11 Gaussian window (sigma 1.5), evaluated where the window fits inside the image.
    """
    c = x.shape[1]
    k = gaussian_kernel1d(radius, sigma).to(device=x.device, dtype=x.dtype)
    kh = k.view(1, 1, 1, -1).expand(c, 1, 1, k.numel())
    kv = k.view(1, 1, -1, 1).expand(c, 1, k.numel(), 1)

    def blur(t: torch.Tensor) -> torch.Tensor:
        return F.conv2d(F.conv2d(t, kh, groups=c), kv, groups=c)

    mu_x, mu_y = blur(x), blur(y)
    sxx = blur(x * x) - mu_x**2
    syy = blur(y * y) - mu_y**2
    sxy = blur(x * y) - mu_x * mu_y
    num = (2 * mu_x * mu_y + _C1) * (2 * sxy + _C2)
    den = (mu_x**2 + mu_y**2 + _C1) * (sxx + syy + _C2)
    return (num / den).flatten(1).mean(1)


def reconstruction_loss(
    output: torch.Tensor, target: torch.Tensor, ssim_weight: float
) -> tuple[torch.Tensor, dict[str, float]]:
    """Scalar loss and its parts {"pixel", "ssim"} (batch means)."""
    pixel = F.mse_loss(output, target)
    s = ssim(output, target).mean()
    loss = pixel + ssim_weight * (1.0 - s)
    return loss, {"pixel": float(pixel.detach()), "ssim": float(s.detach())}
