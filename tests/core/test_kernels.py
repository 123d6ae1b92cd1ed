"""The one Gaussian kernel constructor (`mmif.kernels.gaussian_kernel1d`)."""

from __future__ import annotations

import math

import pytest
import torch

from mmif.kernels import gaussian_kernel1d


def test_gaussian_taps_follow_the_formula_and_sum_to_one():
    k = gaussian_kernel1d(11, 1.5)
    assert k.dtype == torch.float64 and k.numel() == 11
    raw = [math.exp(-((i - 5) ** 2) / (2 * 1.5**2)) for i in range(11)]
    expected = torch.tensor([r / math.fsum(raw) for r in raw], dtype=torch.float64)
    torch.testing.assert_close(k, expected, atol=1e-15, rtol=0)
    assert torch.equal(k, k.flip(0))
    assert abs(float(k.sum()) - 1.0) < 1e-12


def test_gaussian_is_computed_in_the_dtype_asked_for():
    # float32 arithmetic, not float64 rounded to float32: CoCoNet's loss window as it was trained
    k32 = gaussian_kernel1d(11, 1.5, dtype=torch.float32)
    x = torch.arange(11, dtype=torch.float32) - 5.0
    g = torch.exp(-(x * x) / (2.0 * 1.5 * 1.5))
    assert k32.dtype == torch.float32 and torch.equal(k32, g / g.sum())


def test_even_sizes_are_centred_between_taps():
    k = gaussian_kernel1d(4, 1.0)
    assert torch.equal(k, k.flip(0)) and k[1] > k[0]


@pytest.mark.parametrize(("size", "sigma"), [(0, 1.0), (5, 0.0), (5, -1.0), (5, math.nan)])
def test_gaussian_rejects_bad_arguments(size, sigma):
    with pytest.raises(ValueError, match="Gaussian needs"):
        gaussian_kernel1d(size, sigma)
