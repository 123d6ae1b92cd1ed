"""The registered `coconet` method: weights, info(), batching, tiling and colour."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
import torch

from fusion.coconet.inference import (
    _axis_weights,
    fuse_images,
    fuse_tiled,
    load_coconet,
    tile_starts,
)
from fusion.coconet.network import CoCoNet
from fusion.color import rgb_to_ycbcr
from fusion.registry import create_method, is_trainable
from mmif.io import read_image, to_tensor

pytestmark = pytest.mark.usefixtures("single_thread")  # tiny tensors (tests/conftest.py)


@pytest.fixture(scope="module")
def sharp_model() -> CoCoNet:
    """An untrained CoCoNet whose output spans a wide range (a scaled head, non-zero attention),
    so differences between tiled and whole-image fusion would show."""
    torch.manual_seed(0)
    model = CoCoNet().eval()
    with torch.no_grad():
        model.head[2].weight.mul_(60.0)
        model.head[2].bias.zero_()
        for att in (model.att64, model.att128, model.att256):
            att.gamma.fill_(0.5)
    return model


def _scene(h: int, w: int) -> tuple[torch.Tensor, torch.Tensor]:
    yy, xx = torch.meshgrid(torch.linspace(0, 1, h), torch.linspace(0, 1, w), indexing="ij")
    ir = 0.2 + 0.6 * torch.exp(-((xx - 0.3) ** 2 + (yy - 0.6) ** 2) / 0.02)
    vis = 0.5 + 0.3 * torch.sin(12 * xx) * torch.cos(9 * yy)
    return ir.view(1, 1, h, w), vis.view(1, 1, h, w)


def test_registered_and_trainable():
    assert is_trainable("coconet")


def test_without_weights_warns_loudly_and_says_so(caplog: pytest.LogCaptureFixture):
    with caplog.at_level(logging.WARNING):
        method = create_method("coconet", {"images_per_pass": 2}, weights=None, device="cpu")
    assert any("WITHOUT WEIGHTS" in r.message for r in caplog.records)
    info = method.info()
    assert info["weights_loaded"] is False and info["weights"] is None
    assert info["vgg_pretrained"] is False and info["method"] == "coconet"
    assert not method.model.training


def test_loads_weights_and_fuses_like_the_network(tmp_path: Path):
    torch.manual_seed(1)
    net = CoCoNet().eval()
    path = tmp_path / "coconet.pt"
    torch.save({"model": net.state_dict(), "config": {}, "vgg_pretrained": False}, path)
    method = create_method("coconet", {"images_per_pass": 2}, weights=path, device="cpu")
    assert method.info()["weights_loaded"] is True and method.info()["weights"] == str(path)
    ir, vis = torch.rand(3, 1, 40, 52), torch.rand(3, 1, 40, 52)
    with torch.inference_mode():
        expected = net(ir, vis)
    fused = method.fuse(ir, vis)  # 3 images in chunks of 2
    assert fused.shape == (3, 1, 40, 52)
    torch.testing.assert_close(fused, expected, atol=1e-5, rtol=0)


def test_bad_weights_file_is_named(tmp_path: Path):
    bad = tmp_path / "other.pt"
    torch.save({"model": {"conv.weight": torch.zeros(1)}}, bad)
    with pytest.raises(ValueError, match="other.pt"):
        load_coconet(bad)
    with pytest.raises(FileNotFoundError, match="missing.pt"):
        load_coconet(tmp_path / "missing.pt")


def test_tile_layout_and_blend_weights():
    assert tile_starts(100, 128, 32) == [0]
    starts = tile_starts(208, 96, 32)
    assert starts[0] == 0 and starts[-1] == 208 - 96
    assert all(b - a <= 96 - 32 for a, b in zip(starts, starts[1:], strict=False))  # overlap >= 32
    total = torch.zeros(208)
    for s, w in zip(starts, _axis_weights(starts, 96, 208, torch.device("cpu")), strict=True):
        total[s : s + 96] += w
    torch.testing.assert_close(total, torch.ones(208))  # a partition of unity: no seams


def test_tiling_is_exact_for_a_pixelwise_model():
    def model(ir: torch.Tensor, vis: torch.Tensor) -> torch.Tensor:
        return 0.3 * ir + 0.7 * vis**2

    ir, vis = torch.rand(2, 1, 150, 200), torch.rand(2, 1, 150, 200)
    tiled = fuse_tiled(model, ir, vis, tile_size=64, overlap=16, images_per_pass=4)
    torch.testing.assert_close(tiled, model(ir, vis), atol=1e-6, rtol=0)


def test_tiled_close_to_whole_image(sharp_model: CoCoNet):
    ir, vis = _scene(150, 200)
    with torch.inference_mode():
        whole = sharp_model(ir, vis)
        tiled = fuse_images(sharp_model, ir, vis, tile_size=96, overlap=32, images_per_pass=4)
    assert tiled.shape == whole.shape
    assert whole.std() > 0.02  # the output has structure worth comparing
    diff = (tiled - whole).abs()
    # tiles lose only context beyond their border and the per-tile channel statistics of the
    # attention; blending keeps that far below one 8-bit grey level on average
    assert diff.mean() < 1 / 255 and diff.max() < 0.03


def test_rgb_visible_gives_rgb_output_with_visible_chroma(shared_data):
    msrs = shared_data("msrs_det200", "test")
    stem = sorted(p.stem for p in (msrs / "vi").glob("*.png"))[0]
    ir = to_tensor(read_image(msrs / "ir" / f"{stem}.png", mode="grey"))[..., 200:296, 240:368]
    vis = to_tensor(read_image(msrs / "vi" / f"{stem}.png", mode="rgb"))[..., 200:296, 240:368]
    method = create_method("coconet", {}, weights=None, device="cpu")
    fused = method.fuse(ir, vis)
    assert fused.shape == (1, 3, 96, 128)
    y_fused = method.fuse_luminance(ir, rgb_to_ycbcr(vis)[:, :1])
    ycc = rgb_to_ycbcr(fused)
    inside = ((fused > 0.01) & (fused < 0.99)).all(dim=1)  # colours not clipped by the RGB gamut
    assert inside.float().mean() > 0.9
    torch.testing.assert_close(
        ycc[:, :1][inside[:, None]], y_fused[inside[:, None]], atol=2e-3, rtol=0
    )
    for c in (1, 2):  # Cb and Cr come from the visible image
        torch.testing.assert_close(
            ycc[:, c][inside], rgb_to_ycbcr(vis)[:, c][inside], atol=2e-3, rtol=0
        )
