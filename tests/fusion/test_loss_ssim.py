"""The one training-loss SSIM (`fusion.losses.ssim`), used by DenseFuse and CoCoNet."""

from __future__ import annotations

import pytest
import torch

from fusion.losses import ssim


def test_ssim_is_one_for_identical_and_lower_for_noisy():
    torch.manual_seed(0)
    x = torch.rand(2, 1, 32, 32)
    torch.testing.assert_close(ssim(x, x), torch.ones(2, 1))
    assert (ssim(x, (x + 0.2 * torch.randn_like(x)).clamp(0, 1)) < 0.9).all()


def test_ssim_against_torchmetrics_valid_region():
    from torchmetrics.functional.image import structural_similarity_index_measure

    torch.manual_seed(0)
    x = torch.rand(3, 1, 40, 36)
    y = (x + 0.2 * torch.randn_like(x)).clamp(0, 1)
    mean, full = structural_similarity_index_measure(
        y, x, data_range=1.0, reduction="none", return_full_image=True
    )
    # torchmetrics reflect-pads; over the unpadded (valid) positions both are the same SSIM
    torch.testing.assert_close(
        ssim(y, x)[:, 0], full[..., 5:-5, 5:-5].mean(dim=(1, 2, 3)), atol=1e-5, rtol=0
    )
    # ... but its own mean also counts the padded border: the reason the losses keep their own
    assert float((ssim(y, x)[:, 0] - mean).abs().max()) > 1e-3


def test_ssim_per_channel_equals_one_channel_at_a_time():
    torch.manual_seed(1)
    x, y = torch.rand(2, 3, 24, 24), torch.rand(2, 3, 24, 24)
    both = ssim(x, y)
    assert both.shape == (2, 3)
    for c in range(3):
        torch.testing.assert_close(both[:, c], ssim(x[:, c : c + 1], y[:, c : c + 1])[:, 0])


def test_ssim_is_differentiable_and_checks_shapes():
    x = torch.rand(1, 1, 16, 16, requires_grad=True)
    (1 - ssim(x, torch.rand(1, 1, 16, 16))).sum().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all()
    with pytest.raises(ValueError, match="shapes differ"):
        ssim(torch.rand(1, 1, 16, 16), torch.rand(1, 1, 16, 17))
    with pytest.raises(ValueError, match="at least 11 x 11"):
        ssim(torch.rand(1, 1, 8, 16), torch.rand(1, 1, 8, 16))


def test_the_two_trainers_arithmetic_differs_only_by_rounding():
    from fusion.coconet.losses import fidelity_loss
    from fusion.densefuse.loss import reconstruction_loss
    from fusion.losses import COCONET, DENSEFUSE

    torch.manual_seed(2)
    x, y = torch.rand(4, 2, 32, 32), torch.rand(4, 2, 32, 32)
    dense, coco = ssim(x, y, **DENSEFUSE), ssim(x, y, **COCONET)
    torch.testing.assert_close(dense, coco, atol=1e-6, rtol=0)
    # each trainer uses its own setting (kept so that training reproduces bit for bit)
    out, target = x[:, :1], y[:, :1]
    _, parts = reconstruction_loss(out, target, 1.0)
    assert parts["ssim"] == float(ssim(out, target, **DENSEFUSE).mean())
    only_ir = torch.tensor([[1.0, 0.0]]).expand(4, 2)
    _, l_ssim, _ = fidelity_loss(x[:, :1], x[:, :1], y[:, :1], only_ir, only_ir, 1.0)
    expected = (
        1.0 - ssim(torch.cat([x[:, :1], y[:, :1]], 1), x[:, :1].expand(-1, 2, -1, -1), **COCONET)
    )[:, 0].mean()
    assert float(l_ssim) == float(expected)
