"""Box mean, guided filter and friends against direct computations."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from fusion.filters import box_mean, gaussian_blur, guided_filter, laplacian3x3


@pytest.mark.parametrize("r", [1, 3, 6])
def test_box_mean_matches_clipped_window_average(r):
    x = torch.rand(2, 3, 13, 10)
    ref = F.avg_pool2d(x, 2 * r + 1, stride=1, padding=r, count_include_pad=False)
    torch.testing.assert_close(box_mean(x, r), ref, atol=1e-6, rtol=0)


def test_box_mean_with_window_larger_than_image_is_the_global_mean():
    x = torch.rand(1, 1, 5, 7)
    torch.testing.assert_close(box_mean(x, 45), x.mean().expand_as(x))


def test_guided_filter_small_eps_keeps_structure_large_eps_smooths():
    x = torch.rand(1, 1, 20, 20)  # every window has variance >> eps: a = 1, b = 0
    torch.testing.assert_close(guided_filter(x, x, 3, 1e-8), x, atol=1e-4, rtol=0)
    # eps >> variance: a = 0, b = box mean, so the output is the box mean applied twice
    torch.testing.assert_close(
        guided_filter(x, x, 3, 1e6), box_mean(box_mean(x, 3), 3), atol=1e-4, rtol=0
    )
    step = torch.zeros(1, 1, 20, 20)
    step[..., 10:] = 1.0
    err_guided = (guided_filter(step, step, 3, 1e-4) - step).abs().max()
    err_box = (box_mean(step, 3) - step).abs().max()
    assert err_guided < 0.5 * err_box  # edge-preserving, unlike the box mean


def test_gaussian_blur_preserves_constants_and_laplacian_of_ramp_is_zero_inside():
    c = torch.full((1, 1, 9, 9), 0.4)
    torch.testing.assert_close(gaussian_blur(c, 5, 5.0), c)
    ramp = torch.linspace(0, 1, 12).expand(1, 1, 8, 12).contiguous()
    assert laplacian3x3(ramp)[..., 1:-1, 1:-1].abs().max() < 1e-6
