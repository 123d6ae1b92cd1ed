import pytest
import torch

from segmentation.config import SegmentConfig
from segmentation.model import build_model


def test_any_size_in_same_size_logits_out():
    torch.manual_seed(0)
    model, pretrained = build_model(SegmentConfig(), n_classes=4)
    assert pretrained is False
    model.eval()
    with torch.no_grad():
        out = model(torch.rand(2, 3, 50, 70))
    assert out.shape == (2, 4, 50, 70)


def test_nothing_is_downloaded(monkeypatch):
    import huggingface_hub

    def refuse(*args, **kwargs):
        raise AssertionError("a download was attempted")

    monkeypatch.setattr(huggingface_hub, "hf_hub_download", refuse)
    import segmentation_models_pytorch.encoders as enc

    monkeypatch.setattr(enc, "hf_hub_download", refuse, raising=False)
    build_model(SegmentConfig(), n_classes=3)


def test_missing_weights_file_warns_and_trains_from_scratch(tmp_path, caplog):
    cfg = SegmentConfig(encoder_weights=str(tmp_path / "resnet18.pth"))
    _, pretrained = build_model(cfg, n_classes=3)
    assert pretrained is False
    assert "FROM SCRATCH" in caplog.text and "resnet18.pth" in caplog.text


def test_local_weights_are_loaded(tmp_path):
    torch.manual_seed(1)
    source, _ = build_model(SegmentConfig(), n_classes=3)
    # torchvision-style file: encoder tensors plus a classifier that must be dropped
    state = {k: v.clone() for k, v in source.net.encoder.state_dict().items()}
    state["fc.weight"] = torch.zeros(1000, 512)
    torch.save({"state_dict": state}, tmp_path / "enc.pth")
    torch.manual_seed(2)
    model, pretrained = build_model(
        SegmentConfig(encoder_weights=str(tmp_path / "enc.pth")), n_classes=3
    )
    assert pretrained is True
    assert torch.equal(model.net.encoder.conv1.weight, source.net.encoder.conv1.weight)


def test_foreign_weights_are_rejected(tmp_path):
    torch.save({"a.weight": torch.zeros(3)}, tmp_path / "other.pt")
    with pytest.raises(ValueError, match="another network"):
        build_model(SegmentConfig(encoder_weights=str(tmp_path / "other.pt")), n_classes=3)


def test_decoder_channels_narrow_the_decoder():
    wide, _ = build_model(SegmentConfig(encoder="mobilenet_v2"), n_classes=4)
    narrow, _ = build_model(
        SegmentConfig(encoder="mobilenet_v2", decoder_channels=[64, 32, 16, 16, 8]), n_classes=4
    )
    count = lambda m: sum(p.numel() for p in m.parameters())  # noqa: E731
    assert count(narrow) < count(wide)
    assert narrow(torch.rand(1, 3, 50, 70)).shape == (1, 4, 50, 70)


def test_decoder_channels_must_be_positive():
    from mmif.config import section
    from mmif.errors import ConfigError

    with pytest.raises(ConfigError, match="decoder_channels"):
        section({"segment": {"decoder_channels": [64, 0]}}, "segment", SegmentConfig)


def test_encoder_depth_four_leaves_out_the_deepest_stage():
    import torch

    from segmentation.config import SegmentConfig
    from segmentation.model import build_model

    full, _ = build_model(SegmentConfig(encoder="mobilenet_v2"), 3, quiet=True)
    cfg = SegmentConfig(encoder="mobilenet_v2", encoder_depth=4, decoder_channels=[32, 16, 8, 4])
    shallow, _ = build_model(cfg, 3, quiet=True)
    assert sum(p.numel() for p in shallow.parameters()) < sum(p.numel() for p in full.parameters())
    with torch.no_grad():
        assert shallow.eval()(torch.rand(1, 3, 40, 56)).shape == (1, 3, 40, 56)


def test_ensemble_predicts_the_mean_of_its_members_probabilities():
    from segmentation.model import Ensemble, as_one_model

    torch.manual_seed(0)
    cfg = SegmentConfig(encoder="mobilenet_v2", encoder_depth=3, decoder_channels=[16, 8, 4])
    a, _ = build_model(cfg, n_classes=3)
    b, _ = build_model(cfg, n_classes=3)
    x = torch.rand(2, 3, 40, 56)
    with torch.no_grad():
        for m in (a, b):
            m.eval()
        expected = (a(x).softmax(1) + b(x).softmax(1)) / 2
        out = Ensemble([a, b]).eval()(x)
        first = a(x).softmax(1)
    assert torch.allclose(out, expected, atol=1e-6)
    assert torch.allclose(out.sum(1), torch.ones(2, 40, 56), atol=1e-5)
    assert not torch.allclose(out, first, atol=1e-3)  # not just the first member
    assert as_one_model([a]) is a


@pytest.mark.parametrize("depth", [3, 4])
def test_unused_encoder_layers_are_cut_off_and_nothing_else_changes(depth):
    """smp's mobilenet_v2 encoder computes one stage below its depth and discards it;
    build_model removes those layers: same weights, same logits, fewer layers."""
    import segmentation_models_pytorch as smp

    from segmentation.model import SegmentationNet

    widths = [32, 16, 8, 4][:depth]
    cfg = SegmentConfig(encoder="mobilenet_v2", encoder_depth=depth, decoder_channels=widths)
    torch.manual_seed(3)
    cut, _ = build_model(cfg, n_classes=3, quiet=True)
    torch.manual_seed(3)
    whole = SegmentationNet(
        smp.create_model(
            "Unet",
            "mobilenet_v2",
            encoder_depth=depth,
            encoder_weights=None,
            classes=3,
            decoder_channels=widths,
        )
    )
    assert len(cut.net.encoder.features) == {3: 7, 4: 14}[depth] < len(whole.net.encoder.features)
    whole_state = whole.state_dict()
    for key, value in cut.state_dict().items():
        assert torch.equal(value, whole_state[key]), key
    x = torch.rand(2, 3, 40, 56)
    with torch.no_grad():
        assert torch.equal(cut.eval()(x), whole.eval()(x))
    # a checkpoint of the whole network (older project code) loads, strictly, into the cut one
    torch.manual_seed(4)
    fresh, _ = build_model(cfg, n_classes=3, quiet=True)
    fresh.load_state_dict(whole.state_dict())
    with torch.no_grad():
        assert torch.equal(fresh.eval()(x), whole(x))
    with pytest.raises(RuntimeError, match="Unexpected key"):  # other strays are still errors
        fresh.load_state_dict({**whole.state_dict(), "net.encoder.extra.weight": torch.zeros(1)})


def test_encoders_that_stop_at_their_depth_keep_every_layer():
    from segmentation.model import drop_unused_stages

    full, _ = build_model(SegmentConfig(encoder="mobilenet_v2", encoder_depth=5), 3, quiet=True)
    assert len(full.net.encoder.features) == 19
    resnet, _ = build_model(
        SegmentConfig(encoder="resnet18", encoder_depth=3, decoder_channels=[16, 8, 4]),
        3,
        quiet=True,
    )
    assert drop_unused_stages(resnet.net.encoder) == 0
    assert hasattr(resnet.net.encoder, "layer4")  # resnet's forward stops by itself
