import pytest

from mmif.config import from_dict, section
from mmif.errors import ConfigError
from segmentation.config import SegmentConfig


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
        ({"arch": "NoSuchNet"}, "arch"),
        ({"encoder": "resnet1000"}, "encoder"),
        ({"epochs": "ten"}, "segment.epochs"),
        ({"amp": "yes"}, "segment.amp"),
        ({"epoch": 3}, "segment.epoch"),
        ({"encoder_depth": 6}, "encoder_depth"),
        ({"encoder_depth": 4, "decoder_channels": [64, 32, 16, 8, 4]}, "decoder_channels"),
        ({"appearance": {"contrast": 1.5}}, "appearance.contrast"),
        ({"appearance": {"blurr": 0.5}}, "appearance.blurr"),
        ({"appearance": 0.3}, "appearance"),
    ],
)
def test_invalid_values_name_the_key(values, key):
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")) as info:
        from_dict(SegmentConfig, values, "params.yaml:segment")
    assert "params.yaml:segment" in str(info.value)
