"""The SSIM of the fusion training losses (DenseFuse's reconstruction, CoCoNet's fidelity).

One function, `ssim`, for both trainers. It is the project's own rather than torchmetrics'
`structural_similarity_index_measure`, for two measured reasons
(`benchmarks/bench_loss_ssim.py`, 30 x 2 x 64 x 64 patches, forward + backward, one thread of
the 2-core AMD EPYC machine, torchmetrics 1.9.0):

- values: torchmetrics reflect-pads the images and averages SSIM over every pixel, so its mean
  includes positions where the window hangs over the border; the losses (and Wang et al.'s
  reference code) average over the positions where the 11 x 11 window fits. The means differ
  by up to 3.7e-3, far beyond float rounding (over the valid positions the two agree to 1e-6,
  `tests/fusion/test_loss_ssim.py`).
- speed: torchmetrics convolves with the full 11 x 11 window, about 40 times slower than the
  separable 11 + 11 taps here (about 460 ms against 11 ms of CPU time per call).

Each loss keeps its own arithmetic through two parameters (`DENSEFUSE`, `COCONET`): the
precision the window is computed in and whether the five blurred maps share one grouped
convolution. The two settings give the same SSIM to float rounding (forward values within
1.2e-7), but training amplifies rounding: DenseFuse's default 3-epoch training with CoCoNet's
arithmetic ended with weights up to 0.05 apart (final loss 3.3569 instead of 3.3600), which
would change the DenseFuse numbers of `make repro`. With its own settings each trainer
reproduces its earlier losses and gradients bit for bit (`tests/fusion/test_loss_ssim.py`).

The evaluation SSIM (`metrics.structural`) is a separate implementation on purpose: it
reproduces published numbers bit for bit in float64, while this one is float32 and
differentiable.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from mmif.kernels import gaussian_kernel1d

#: SSIM stabilisers (K1 L)^2, (K2 L)^2 with K1 = 0.01, K2 = 0.03 and dynamic range L = 1
C1 = 0.01**2
C2 = 0.03**2


#: DenseFuse's loss: window computed in float64 (then float32), one convolution per map
DENSEFUSE = {"kernel_dtype": torch.float64, "blur_together": False}
#: CoCoNet's loss: window computed in float32, the five maps blurred in one grouped convolution
COCONET = {"kernel_dtype": torch.float32, "blur_together": True}


def ssim(
    x: torch.Tensor,
    y: torch.Tensor,
    window: int = 11,
    sigma: float = 1.5,
    kernel_dtype: torch.dtype = torch.float32,
    blur_together: bool = True,
) -> torch.Tensor:
    """Structural similarity (Wang et al. 2004) per sample and channel; differentiable.

    x, y: B x C x H x W in [0, 1], H and W >= window. Gaussian window (`window` taps, `sigma`),
    K1 = 0.01, K2 = 0.03, mean over the valid (unpadded) positions. Computed in float32 (also
    under autocast: the constants vanish in half precision). Returns B x C.
    kernel_dtype, blur_together: the arithmetic of one trainer (`DENSEFUSE`, `COCONET`); they
    change the result only by float rounding.
    """
    if x.shape != y.shape:
        raise ValueError(f"ssim: shapes differ, {tuple(x.shape)} and {tuple(y.shape)}")
    if min(x.shape[-2:]) < window:
        raise ValueError(
            f"ssim: images must be at least {window} x {window}, got {tuple(x.shape[-2:])}"
        )
    c = x.shape[1]
    x, y = x.float(), y.float()
    g = gaussian_kernel1d(window, sigma, dtype=kernel_dtype, device=x.device).float()
    with torch.autocast(device_type=x.device.type, enabled=False):
        if blur_together:
            stack = torch.cat([x, y, x * x, y * y, x * y], dim=1)  # B x 5C
            mu_x, mu_y, xx, yy, xy = _blur(stack, g).split(c, dim=1)
        else:
            mu_x, mu_y = _blur(x, g), _blur(y, g)
            xx, yy, xy = _blur(x * x, g), _blur(y * y, g), _blur(x * y, g)
    var_x, var_y, cov = xx - mu_x**2, yy - mu_y**2, xy - mu_x * mu_y
    s = ((2 * mu_x * mu_y + C1) * (2 * cov + C2)) / (
        (mu_x**2 + mu_y**2 + C1) * (var_x + var_y + C2)
    )
    return s.mean(dim=(2, 3))


def _blur(t: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
    """Separable blur of every channel with the taps `g`, valid positions only."""
    n, k = t.shape[1], g.numel()
    t = F.conv2d(t, g.view(1, 1, 1, -1).expand(n, 1, 1, k), groups=n)
    return F.conv2d(t, g.view(1, 1, -1, 1).expand(n, 1, k, 1), groups=n)
