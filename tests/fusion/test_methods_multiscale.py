"""Laplacian pyramid, DWT and GFF fusion on cases with a known answer.

Main case (multi-focus style): one texture, blurred on the left half in the first source and on
the right half in the second. A good fusion keeps both sharp halves, i.e. its sharpness in each
half matches the source that is sharp there, and it is close to the unblurred texture; averaging
(the `mean` baseline) keeps only about a quarter of the sharpness.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.ndimage import gaussian_filter

from fusion.color import rgb_to_ycbcr
from fusion.methods.dwt import dwt_fuse
from fusion.methods.gff import gff_fuse
from fusion.methods.laplacian import collapse_pyramid, laplacian_fuse, laplacian_pyramid
from fusion.registry import create_method
from mmif.errors import ConfigError

METHODS = ["laplacian", "dwt", "gff"]
MARGIN = 8  # pixels away from the seam and the border, where blur and windows mix the halves


def _half_blurred(h: int, w: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    rng = np.random.default_rng(seed)
    tex = gaussian_filter(rng.random((h, w)), 1.0)
    tex = 0.2 + 0.6 * (tex - tex.min()) / (tex.max() - tex.min())
    blurred = gaussian_filter(tex, 3.0)
    a, b = tex.copy(), tex.copy()
    a[:, : w // 2] = blurred[:, : w // 2]
    b[:, w // 2 :] = blurred[:, w // 2 :]
    return tuple(torch.from_numpy(x).float()[None, None] for x in (tex, a, b))


def _sharpness(x: torch.Tensor, half: str) -> float:
    """Mean squared gradient of one half of a 1 x 1 x H x W image, away from seam and border."""
    img = x[0, 0].double().numpy()
    gy, gx = np.gradient(img)
    energy = (gx**2 + gy**2)[MARGIN:-MARGIN]
    w = img.shape[1]
    part = (
        energy[:, MARGIN : w // 2 - MARGIN]
        if half == "left"
        else energy[:, w // 2 + MARGIN : -MARGIN]
    )
    return float(part.mean())


@pytest.mark.parametrize("name", METHODS)
@pytest.mark.parametrize("size", [(64, 96), (63, 97)])
def test_keeps_both_sharp_halves(name, size):
    tex, a, b = _half_blurred(*size)
    fused = create_method(name).fuse(a, b)
    mean = create_method("mean").fuse(a, b)
    assert fused.shape == a.shape
    # the left half is sharp in b, the right half in a
    assert _sharpness(fused, "left") >= 0.9 * _sharpness(b, "left")
    assert _sharpness(fused, "right") >= 0.9 * _sharpness(a, "right")
    assert _sharpness(mean, "left") < 0.5 * _sharpness(b, "left")  # the case does discriminate
    inner = (..., slice(MARGIN, -MARGIN), slice(MARGIN, -MARGIN))
    err_fused = (fused - tex)[inner].abs().mean()
    err_mean = (mean - tex)[inner].abs().mean()
    assert err_fused < 0.4 * err_mean


@pytest.mark.parametrize("name", METHODS)
@pytest.mark.parametrize("size", [(1, 1), (2, 3), (5, 7), (31, 17)])
def test_identical_sources_give_the_source_for_any_size(name, size):
    x = 0.1 + 0.8 * torch.rand(2, 1, *size)
    fused = create_method(name).fuse(x, x)
    torch.testing.assert_close(fused, x, atol=1e-5, rtol=0)


@pytest.mark.parametrize("name", METHODS)
def test_batch_equals_per_image(name):
    ir, vis = torch.rand(3, 1, 33, 21), torch.rand(3, 1, 33, 21)
    method = create_method(name)
    batch = method.fuse(ir, vis)
    single = torch.cat([method.fuse(ir[i : i + 1], vis[i : i + 1]) for i in range(3)])
    torch.testing.assert_close(batch, single, atol=1e-6, rtol=0)


@pytest.mark.parametrize("name", METHODS)
def test_output_in_unit_range_on_extreme_inputs(name):
    ir = (torch.rand(1, 1, 40, 40) > 0.5).float()
    vis = 1.0 - ir
    fused = create_method(name).fuse(ir, vis)
    assert fused.min() >= 0.0 and fused.max() <= 1.0


def test_complementary_steps_fused_by_gff_keep_both_steps():
    # a bright square seen only in ir, another only in vis: both stay clearly above the mean fusion
    ir = torch.full((1, 1, 64, 64), 0.2)
    vis = torch.full((1, 1, 64, 64), 0.2)
    ir[..., 10:26, 10:26] = 0.9
    vis[..., 38:54, 38:54] = 0.9
    fused = gff_fuse(ir, vis)
    mean = 0.5 * (ir + vis)
    for sl in ((..., slice(14, 22), slice(14, 22)), (..., slice(42, 50), slice(42, 50))):
        assert fused[sl].mean() > mean[sl].mean() + 0.1


def test_laplacian_pyramid_is_invertible_on_odd_sizes():
    x = torch.rand(2, 1, 37, 53)
    details, base = laplacian_pyramid(x, 4)
    assert [tuple(d.shape[-2:]) for d in details] == [(37, 53), (19, 27), (10, 14), (5, 7)]
    assert tuple(base.shape[-2:]) == (3, 4)
    torch.testing.assert_close(collapse_pyramid(details, base), x, atol=1e-6, rtol=0)


def test_functional_forms_match_registered_methods():
    ir, vis = torch.rand(1, 1, 20, 24), torch.rand(1, 1, 20, 24)
    torch.testing.assert_close(
        create_method("laplacian", {"levels": 2}).fuse(ir, vis), laplacian_fuse(ir, vis, 2)
    )
    torch.testing.assert_close(
        create_method("dwt", {"wavelet": "haar", "levels": 2}).fuse(ir, vis),
        dwt_fuse(ir, vis, "haar", 2),
    )


def test_rgb_visible_gives_rgb_output_with_visible_chroma():
    torch.manual_seed(0)
    ir = 0.3 + 0.4 * torch.rand(2, 1, 24, 31)
    # a smooth, moderately saturated colour image so the recombined RGB is not clipped
    base = torch.nn.functional.interpolate(torch.rand(2, 3, 4, 5), size=(24, 31), mode="bilinear")
    vis = 0.35 + 0.3 * base
    fused = create_method("laplacian").fuse(ir, vis)
    assert fused.shape == (2, 3, 24, 31)
    torch.testing.assert_close(
        rgb_to_ycbcr(fused)[:, 1:], rgb_to_ycbcr(vis)[:, 1:], atol=3e-3, rtol=0
    )
    # and its luminance is the grey fusion of the two luminances
    grey = create_method("laplacian").fuse(ir, rgb_to_ycbcr(vis)[:, :1])
    torch.testing.assert_close(rgb_to_ycbcr(fused)[:, :1], grey, atol=3e-3, rtol=0)


@pytest.mark.parametrize(
    ("name", "params", "key"),
    [
        ("laplacian", {"levels": 0}, "levels"),
        ("laplacian", {"level": 3}, "level"),
        ("dwt", {"wavelet": "nope"}, "wavelet"),
        ("gff", {"r1": 45, "eps3": 1.0}, "eps3"),
        ("gff", {"eps2": "1e-6"}, "eps2"),  # YAML reads 1e-6 as a string; 1.0e-6 is a number
    ],
)
def test_bad_params_name_the_key(name, params, key):
    with pytest.raises(ConfigError, match=key):
        create_method(name, params)
