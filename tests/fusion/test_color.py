"""The colour path of every fusion method (fusion.color): RGB -> luminance + chroma -> RGB."""

from __future__ import annotations

import pytest
import torch

from fusion.color import luminance, merge_colour, rgb_to_ycbcr, split_colour, ycbcr_to_rgb
from fusion.registry import create_method
from mmif.io import to_uint8

pytestmark = pytest.mark.usefixtures("single_thread")  # small tensors (tests/conftest.py)
#: the conversion's rounded coefficients move values by up to this much (measured: 0.072 levels)
TENTH_LEVEL = 0.1 / 255


def _levels(x: torch.Tensor) -> torch.Tensor:
    return (x * 255.0).round()


def test_every_8bit_colour_survives_the_round_trip():
    """All 256^3 colours, 16 red levels at a time: back within a tenth of a grey level, so the
    same 8-bit colour after rounding."""
    r, g, b = torch.meshgrid(
        torch.arange(16.0), torch.arange(256.0), torch.arange(256.0), indexing="ij"
    )
    for r0 in range(0, 256, 16):
        rgb = torch.stack([r + r0, g, b])[None] / 255.0
        back = ycbcr_to_rgb(rgb_to_ycbcr(rgb))
        assert float((back - rgb).abs().max()) < TENTH_LEVEL, f"red levels {r0}.."
        assert torch.equal(_levels(back), _levels(rgb)), f"red levels {r0}.."


def test_grey_has_neutral_chroma_and_comes_back_unchanged():
    grey = torch.linspace(0, 1, 256).reshape(1, 1, 16, 16).repeat(1, 3, 1, 1)
    ycc = rgb_to_ycbcr(grey)
    torch.testing.assert_close(ycc[:, 0:1], grey[:, 0:1], atol=1e-6, rtol=0)
    torch.testing.assert_close(ycc[:, 1:], torch.full_like(ycc[:, 1:], 0.5), atol=1e-6, rtol=0)
    assert torch.equal(_levels(ycbcr_to_rgb(ycc)), _levels(grey))


def test_luminance_is_bt601_and_grey_passes_through():
    rgb = torch.rand(2, 3, 5, 7, generator=torch.Generator().manual_seed(0))
    want = 0.299 * rgb[:, 0:1] + 0.587 * rgb[:, 1:2] + 0.114 * rgb[:, 2:3]
    torch.testing.assert_close(luminance(rgb), want)
    grey = rgb[:, :1]
    assert luminance(grey) is grey
    with pytest.raises(ValueError, match="expected 1 or 3 channels, got 2"):
        luminance(rgb[:, :2])


def _pair(seed: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    grey = (torch.rand(2, 1, 12, 10, generator=gen) * 255).round() / 255
    rgb = (torch.rand(2, 3, 12, 10, generator=gen) * 255).round() / 255
    return grey, rgb


def test_split_takes_the_chroma_of_whichever_source_has_colour():
    grey, rgb = _pair()
    ir_y, vis_y, chroma = split_colour(grey, rgb)  # infrared-visible: the visible has colour
    assert ir_y is grey and chroma.shape == (2, 2, 12, 10)
    assert torch.equal(_levels(merge_colour(vis_y, chroma)), _levels(rgb))
    ir_y, vis_y, chroma = split_colour(rgb, grey)  # PET/SPECT given first: its colour is kept
    assert vis_y is grey
    assert torch.equal(_levels(merge_colour(ir_y, chroma)), _levels(rgb))
    ir_y, vis_y, chroma = split_colour(grey, grey)
    assert chroma is None and merge_colour(ir_y, None) is ir_y


@pytest.mark.parametrize(("method", "colour_first"), [("vis", False), ("ir", True)])
def test_a_method_that_returns_the_colour_source_returns_it_unchanged(method, colour_first):
    """The luminance path ends where it started: fusing to the colour source's own luminance
    and putting its chroma back gives the same 8-bit image."""
    grey, rgb = _pair(2)
    ir, vis = (rgb, grey) if colour_first else (grey, rgb)
    fused = create_method(method).fuse(ir, vis)
    assert fused.shape == rgb.shape
    for i in range(len(rgb)):
        assert (to_uint8(fused[i]) == to_uint8(rgb[i])).all()


def test_fused_colour_keeps_the_chroma_and_takes_the_fused_luminance():
    grey, rgb = _pair(3)
    fused = create_method("max").fuse(grey, rgb)
    ycc = rgb_to_ycbcr(fused)
    want_y = torch.maximum(grey, luminance(rgb))
    inside = (fused > 0.01).all(1, keepdim=True) & (fused < 0.99).all(1, keepdim=True)
    assert inside.float().mean() > 0.5  # most pixels not clipped by the conversion back
    torch.testing.assert_close(ycc[:, :1][inside], want_y[inside], atol=TENTH_LEVEL, rtol=0)
    chroma = rgb_to_ycbcr(rgb)[:, 1:]
    torch.testing.assert_close(
        ycc[:, 1:][inside.expand(-1, 2, -1, -1)], chroma[inside.expand(-1, 2, -1, -1)],
        atol=TENTH_LEVEL, rtol=0,
    )  # fmt: skip
