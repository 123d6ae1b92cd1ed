from __future__ import annotations

import importlib

import pytest
import torch

from detection.config import DetectConfig, ultralytics_device
from mmif.config import from_dict, section
from mmif.errors import ConfigError


def test_defaults_are_valid_and_train_from_scratch() -> None:
    cfg = from_dict(DetectConfig, {}, "params.yaml:detect")
    assert cfg.model == "yolov8n.yaml"
    assert cfg.pretrained is False
    assert cfg.conf <= 0.01  # predictions.json must keep the low-confidence tail


def test_section_reads_values() -> None:
    cfg = section({"detect": {"epochs": 3, "imgsz": 64, "device": "cpu"}}, "detect", DetectConfig)
    assert (cfg.epochs, cfg.imgsz, cfg.device) == (3, 64, "cpu")


@pytest.mark.parametrize(
    ("values", "key"),
    [
        ({"epochs": 0}, "epochs"),
        ({"imgsz": 100}, "imgsz"),
        ({"batch": 0}, "batch"),
        ({"device": "gpu"}, "device"),
        ({"optimizer": "LBFGS"}, "optimizer"),
        ({"conf": 1.5}, "conf"),
        ({"iou": 0.0}, "iou"),
        ({"mosaic": -0.1}, "mosaic"),
        ({"scale": 1.0}, "scale"),
        ({"patience": 0}, "patience"),
        ({"model": "yolov8n"}, "model"),
        ({"model": "no/such/weights.pt"}, "model"),
        ({"appearance": {"gamma": -0.1}}, "appearance.gamma"),
        ({"appearance": {"blur": 2.0}}, "appearance.blur"),
        ({"appearance": {"sharpen": 1.0}}, "appearance.sharpen"),
        ({"ema_tau": 0}, "ema_tau"),
        ({"ema_tau": "short"}, "ema_tau"),
    ],
)
def test_invalid_values_name_the_key(values: dict, key: str) -> None:
    with pytest.raises(ConfigError, match=key):
        from_dict(DetectConfig, values, "params.yaml:detect")


def test_unknown_key_and_wrong_type_are_rejected() -> None:
    with pytest.raises(ConfigError, match=r"detect\.epoch\b"):
        from_dict(DetectConfig, {"epoch": 3}, "params.yaml:detect")
    with pytest.raises(ConfigError, match=r"detect\.imgsz"):
        from_dict(DetectConfig, {"imgsz": "640"}, "params.yaml:detect")


def test_existing_pt_file_counts_as_pretrained(tmp_path) -> None:
    weights = tmp_path / "w.pt"
    weights.write_bytes(b"")
    cfg = from_dict(DetectConfig, {"model": str(weights)}, "params.yaml:detect")
    assert cfg.pretrained is True


@pytest.mark.parametrize("device", ["0", "1,2", "cuda", "cuda:1", "auto", "cpu"])
def test_device_spellings_are_accepted(device: str) -> None:
    assert from_dict(DetectConfig, {"device": device}, "params.yaml:detect").device == device


def test_ultralytics_device_translation() -> None:
    assert ultralytics_device("cpu") == "cpu"
    assert ultralytics_device("auto") == ("0" if torch.cuda.is_available() else "cpu")
    if torch.cuda.is_available():
        assert ultralytics_device("cuda:0") == "0"
        assert ultralytics_device("cuda") == "0"
    else:
        with pytest.raises(RuntimeError, match="CUDA is not available"):
            ultralytics_device("cuda")


def test_appearance_reaches_the_training_images_through_the_environment(monkeypatch) -> None:
    import numpy as np

    from detection.yolo import AppearanceTransform
    from mmif.augment import APPEARANCE_ENV, Appearance

    cfg = from_dict(DetectConfig, {"appearance": {"contrast": 0.5, "noise": 0.05}}, "detect")
    monkeypatch.setenv(APPEARANCE_ENV, cfg.appearance_config().to_env())
    assert Appearance.from_env() == Appearance(contrast=0.5, noise=0.05)
    image = np.full((16, 20, 3), 100, np.uint8)
    image[4:8] = 200
    out = AppearanceTransform(Appearance.from_env())({"img": image.copy(), "cls": []})["img"]
    assert out.shape == image.shape and out.dtype == np.uint8 and not np.array_equal(out, image)
    monkeypatch.setenv(APPEARANCE_ENV, Appearance().to_env())
    assert Appearance.from_env() is None  # all off: nothing inserted


def test_ema_decay_is_ultralytics_ramp_with_the_configured_tau() -> None:
    from detection.yolo import ema_decay  # imports ultralytics offline first

    torch_utils = importlib.import_module("ultralytics.utils.torch_utils")
    # tau 2000: the default of DetectConfig.ema_tau
    theirs = torch_utils.ModelEMA(torch.nn.Linear(2, 2))
    for steps in (1, 100, 576, 5000):
        assert ema_decay(steps, DetectConfig().ema_tau) == pytest.approx(theirs.decay(steps))
    # a short ramp averages a run of a few hundred steps; ultralytics' default barely does
    assert ema_decay(576, 100.0) > 0.98 > 0.3 > ema_decay(576, 2000.0)
