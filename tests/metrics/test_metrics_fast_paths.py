"""The exact fast paths of the metric suite agree with their definitions.

Grey levels of float32 input are computed in float32 (with a float64 fallback where that could
round differently), and the windowed metrics run strip by strip of rows; neither may change a
value beyond float rounding.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.signal import correlate2d

from metrics import METRIC_NAMES, compute_metrics, filters, grey_levels


def _definition(x: torch.Tensor) -> torch.Tensor:
    """METRICS.md grey levels, in float64 as written: round(255 x), rounded BT.601 luminance."""
    levels = (x.double() * 255.0).round().clamp(0.0, 255.0)
    if levels.shape[1] == 3:
        r, g, b = levels[:, 0:1], levels[:, 1:2], levels[:, 2:3]
        levels = (r * 0.299 + g * 0.587 + b * 0.114).round()
    return levels


@pytest.mark.parametrize("channels_last", [False, True])
def test_float32_grey_levels_match_the_float64_definition(channels_last):
    gen = torch.Generator().manual_seed(0)
    x = torch.randint(0, 256, (2, 3, 40, 50), generator=gen).float() / 255
    # colours whose luminance is exactly a half (299 R + 587 G + 114 B = 1000 k + 500)
    x[0, :, 0, 0] = torch.tensor([2.0, 0.0, 1.0]) / 255  # 598 + 114 = 712: not a half
    x[0, :, 0, 1] = torch.tensor([0.0, 0.0, 250.0]) / 255  # 28500: a half
    x[1] = torch.rand(3, 40, 50, generator=gen)  # arbitrary values, not on the 8-bit grid
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    assert torch.equal(grey_levels(x), _definition(x))
    assert torch.equal(grey_levels(x[:, :1]), _definition(x[:, :1]))


def test_float32_products_that_round_onto_a_half_use_the_exact_product():
    # float32 values next to (k + 0.5) / 255, whose float32 product with 255 rounds onto k + 0.5
    halves = ((torch.arange(255, dtype=torch.float64) + 0.5) / 255).float()
    x = torch.nextafter(halves, torch.tensor(2.0)).view(1, 1, 15, 17)
    assert not torch.equal((x * 255).round().double(), (x.double() * 255).round())
    assert torch.equal(grey_levels(x), _definition(x))
    assert torch.equal(grey_levels(x.repeat(1, 3, 1, 1)), _definition(x.repeat(1, 3, 1, 1)))


@pytest.mark.parametrize(("size", "step"), [(17, 1), (9, 2), (11, 1), (3, 2)])
def test_strip_filters_match_2d_correlation(size, step):
    gen = torch.Generator().manual_seed(size)
    x = torch.rand(5, 61, 70, dtype=torch.float64, generator=gen)
    taps = tuple(torch.rand(size, dtype=torch.float64, generator=gen).tolist())
    want = np.stack([correlate2d(img, np.outer(taps, taps), mode="valid") for img in x.numpy()])
    got = filters.separable_hnw(x.permute(1, 0, 2), taps, step=step).permute(1, 0, 2)
    np.testing.assert_allclose(got.numpy(), want[:, ::step, ::step], rtol=1e-12, atol=1e-12)
    if step == 1:
        # many small strips and bands: the rows a band keeps for the next one
        strips = filters.filtered_strips(
            x.permute(1, 0, 2), lambda rows, out: out.copy_(rows), 5, taps, pairs=400
        )
        got = torch.cat([s.clone() for s in strips]).permute(1, 0, 2)
        np.testing.assert_allclose(got.numpy(), want, rtol=1e-12, atol=1e-12)


def test_results_do_not_depend_on_the_strip_size(monkeypatch):
    gen = torch.Generator().manual_seed(1)
    x = (torch.rand(3, 1, 170, 183, generator=gen) * 255).round() / 255
    ir, vis, fused = x[0:1], x[1:2], (x[0:1] + x[2:3]) / 2
    names = [n for n in METRIC_NAMES if n != "FMI_pixel"]
    default = compute_metrics(ir, vis, fused, names=names)
    monkeypatch.setattr(filters, "STRIP_ELEMENTS", 1000)  # strips of a few rows
    small = compute_metrics(ir, vis, fused, names=names)
    for name in names:
        torch.testing.assert_close(small[name], default[name], rtol=1e-6, atol=1e-9, msg=name)
