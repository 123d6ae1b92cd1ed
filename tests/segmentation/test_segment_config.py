import pytest

from mmif.config import from_dict, section
from mmif.errors import ConfigError
from segmentation.config import SegmentConfig, check_network_names


def test_defaults_are_valid_and_offline():
    cfg = section({}, "segment", SegmentConfig)
    assert cfg.arch == "Unet" and cfg.encoder == "resnet18"
    assert cfg.encoder_weights is None


def test_values_from_params():
    cfg = from_dict(
        SegmentConfig,
        {"epochs": 3, "crop_size": 64, "lr": 1, "device": "cuda:1"},
        "params.yaml:segment",
    )
    assert cfg.epochs == 3 and cfg.crop_size == 64 and cfg.lr == 1.0 and cfg.device == "cuda:1"


@pytest.mark.parametrize(
    ("values", "key"),
    [
        ({"epochs": 0}, "epochs"),
        ({"batch_size": 0}, "batch_size"),
        ({"lr": 0.0}, "lr"),
        ({"weight_decay": -1.0}, "weight_decay"),
        ({"crop_size": 100}, "crop_size"),
        ({"scale_min": 1.5, "scale_max": 1.0}, "scale_min"),
        ({"device": "gpu"}, "device"),
        ({"num_workers": -1}, "num_workers"),
        ({"epochs": "ten"}, "segment.epochs"),
        ({"amp": "yes"}, "segment.amp"),
        ({"epoch": 3}, "segment.epoch"),
        ({"encoder_depth": 6}, "encoder_depth"),
        ({"encoder_depth": 4, "decoder_channels": [64, 32, 16, 8, 4]}, "decoder_channels"),
        ({"appearance": {"contrast": 1.5}}, "appearance.contrast"),
        ({"appearance": {"blurr": 0.5}}, "appearance.blurr"),
        ({"appearance": 0.3}, "appearance"),
        ({"members": 0}, "members"),
        ({"members": True}, "members"),
        ({"val_every": 0}, "val_every"),
        ({"val_every": 1.5}, "val_every"),
        ({"calibration": "temperature"}, "calibration"),
    ],
)
def test_invalid_values_name_the_key(values, key):
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")) as info:
        from_dict(SegmentConfig, values, "params.yaml:segment")
    assert "params.yaml:segment" in str(info.value)


@pytest.mark.parametrize(
    ("arch", "encoder", "key"),
    [("NoSuchNet", "resnet18", "arch"), ("Unet", "resnet1000", "encoder")],
)
def test_network_names_are_checked_against_smp(arch, encoder, key):
    with pytest.raises(ValueError, match=f"^{key}: unknown"):
        check_network_names(arch, encoder)
    check_network_names("FPN", "mobilenet_v2")  # known names pass
    check_network_names("Unet", "tu-resnet18")  # timm encoders are left to smp


def test_building_a_network_with_a_bad_name_names_the_key():
    from segmentation.model import build_model

    cfg = from_dict(SegmentConfig, {"arch": "NoSuchNet"}, "params.yaml:segment")
    with pytest.raises(ConfigError, match=r"segment\.arch: unknown architecture 'NoSuchNet'"):
        build_model(cfg, 3)
