"""The one-channel VGG19: local weights only, grey collapse, seeded fallback with one warning."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
import torch

from fusion.coconet import vgg
from fusion.coconet.network import CoCoNet


@pytest.fixture
def empty_hub(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """torch.hub pointed at an empty folder, and the warn-once flag reset."""
    hub = tmp_path / "hub"
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(hub))
    monkeypatch.setattr(vgg, "_warned_untrained", False)
    return hub


def _fake_torchvision_vgg19(
    path: Path, n_convs: int = vgg.N_PYRAMID_CONVS
) -> dict[str, torch.Tensor]:
    gen = torch.Generator().manual_seed(123)
    state = {}
    for name, idx, c_in, c_out in vgg.VGG19_CONVS[:n_convs]:
        c_in = 3 if name == "conv1_1" else c_in
        state[f"features.{idx}.weight"] = torch.randn(c_out, c_in, 3, 3, generator=gen)
        state[f"features.{idx}.bias"] = torch.randn(c_out, generator=gen)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(state, path)
    return state


def test_untrained_fallback_is_seeded_and_warns_once(
    empty_hub: Path, caplog: pytest.LogCaptureFixture
):
    with caplog.at_level(logging.WARNING, logger="fusion.coconet.vgg"):
        a, pretrained_a = vgg.load_vgg19_grey(vgg.N_PYRAMID_CONVS, None, seed=0)
        b, pretrained_b = vgg.load_vgg19_grey(vgg.N_PYRAMID_CONVS, None, seed=0)
    assert not pretrained_a and not pretrained_b
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert sum("VGG19 ImageNet weights not found" in r.message for r in caplog.records) == 1
    c, _ = vgg.load_vgg19_grey(vgg.N_PYRAMID_CONVS, None, seed=1)
    assert not torch.equal(a["conv1_1.weight"], c["conv1_1.weight"])
    assert CoCoNet().vgg_pretrained is False


def test_seeded_layers_do_not_depend_on_depth():
    short, full = (
        vgg.seeded_vgg19_grey(vgg.N_PYRAMID_CONVS, 3),
        vgg.seeded_vgg19_grey(vgg.N_RELU_CONVS, 3),
    )
    assert all(torch.equal(short[k], full[k]) for k in short)
    assert full["conv1_1.weight"].shape == (64, 1, 3, 3) and full["conv5_1.weight"].shape == (
        512,
        512,
        3,
        3,
    )


def test_torchvision_file_is_collapsed_to_grey(tmp_path: Path, empty_hub: Path):
    path = tmp_path / "my_vgg19.pth"
    raw = _fake_torchvision_vgg19(path)
    state, pretrained = vgg.load_vgg19_grey(vgg.N_PYRAMID_CONVS, path)
    assert pretrained
    rgb = raw["features.0.weight"]
    grey = 0.299 * rgb[:, 0:1] + 0.587 * rgb[:, 1:2] + 0.114 * rgb[:, 2:3]
    torch.testing.assert_close(state["conv1_1.weight"], grey)
    torch.testing.assert_close(state["conv3_4.weight"], raw["features.16.weight"])
    net = CoCoNet(vgg_weights=path)
    assert net.vgg_pretrained and bool(net.state_dict()["vgg_pretrained_flag"])
    torch.testing.assert_close(net.vgg.conv2_1.weight, raw["features.5.weight"])


def test_torchvision_cache_is_found(empty_hub: Path, caplog: pytest.LogCaptureFixture):
    _fake_torchvision_vgg19(empty_hub / "checkpoints" / vgg.TORCHVISION_FILE)
    with caplog.at_level(logging.WARNING, logger="fusion.coconet.vgg"):
        _, pretrained = vgg.load_vgg19_grey(vgg.N_PYRAMID_CONVS)
    assert pretrained and not caplog.records


def test_configured_file_must_exist_and_fit(tmp_path: Path):
    with pytest.raises(FileNotFoundError, match="nowhere.pth"):
        vgg.load_vgg19_grey(8, tmp_path / "nowhere.pth")
    short = tmp_path / "short.pth"
    _fake_torchvision_vgg19(short, n_convs=2)
    with pytest.raises(ValueError, match="features.5.weight"):
        vgg.load_vgg19_grey(8, short)


def test_feature_shapes():
    x = torch.rand(2, 1, 64, 64) * 2 - 1
    v1, v2, v3 = vgg.VGG19Pyramid(vgg.seeded_vgg19_grey(vgg.N_PYRAMID_CONVS))(x)
    assert (v1.shape, v2.shape, v3.shape) == ((2, 64, 32, 32), (2, 128, 16, 16), (2, 256, 8, 8))
    feats = vgg.VGG19Relu(vgg.seeded_vgg19_grey(vgg.N_RELU_CONVS))(x)
    assert [tuple(f.shape[1:]) for f in feats] == [
        (64, 64, 64),
        (128, 32, 32),
        (256, 16, 16),
        (512, 8, 8),
        (512, 4, 4),
    ]
    assert all((f >= 0).all() for f in feats)  # all relu outputs
    assert not any(p.requires_grad for p in vgg.VGG19Relu().parameters())


def test_install_weights_checks_the_checksum_and_leaves_nothing_on_failure(
    tmp_path: Path, empty_hub: Path, caplog: pytest.LogCaptureFixture
):
    fake = tmp_path / "download" / vgg.TORCHVISION_FILE
    _fake_torchvision_vgg19(fake, vgg.N_RELU_CONVS)
    dest = Path(torch.hub.get_dir()) / "checkpoints" / vgg.TORCHVISION_FILE
    # a file that is not torchvision's (its SHA-256 does not start with dcbb9e9d) is refused
    with pytest.raises(ValueError, match="does not start with dcbb9e9d"):
        vgg.install_vgg19_weights(fake)
    assert not dest.parent.exists() or not any(dest.parent.iterdir())
    # with the file's own checksum prefix it is installed where CoCoNet looks, and used
    prefix = vgg.sha256_of(fake)[:8]
    assert vgg.install_vgg19_weights(fake, sha256_prefix=prefix) == dest
    assert dest.read_bytes() == fake.read_bytes() and [p.name for p in dest.parent.iterdir()] == [
        dest.name
    ]
    assert CoCoNet().vgg_pretrained
    # right checksum but not a VGG19: refused too
    junk = tmp_path / "junk.pth"
    torch.save({"something": torch.zeros(1)}, junk)
    with pytest.raises(ValueError, match="features.0.weight"):
        vgg.install_vgg19_weights(junk, tmp_path / "out.pth", sha256_prefix=vgg.sha256_of(junk)[:8])
    assert not (tmp_path / "out.pth").exists() and not list(tmp_path.glob(".out.pth*"))


def test_install_weights_offline_gives_one_clear_error(tmp_path: Path):
    # nothing listens on the discard port of this machine: the download fails at once
    with pytest.raises(RuntimeError, match=r"offline.*mmif weights vgg19 --from FILE"):
        vgg.install_vgg19_weights("http://127.0.0.1:9/vgg19-dcbb9e9d.pth", tmp_path / "w.pth")
    assert not list(tmp_path.iterdir())


def test_mmif_weights_command_offline(tmp_path: Path, caplog: pytest.LogCaptureFixture):
    from mmif.cli import main

    with caplog.at_level(logging.ERROR):
        rc = main(
            [
                "weights",
                "vgg19",
                "--from",
                "http://127.0.0.1:9/x.pth",
                "--dest",
                str(tmp_path / "w.pth"),
            ]
        )
    assert rc == 1 and any("offline" in r.message for r in caplog.records)
    assert not list(tmp_path.iterdir())
