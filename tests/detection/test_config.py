from __future__ import annotations

import pytest
import torch

from detection.config import DetectConfig, ultralytics_device
from mmif.config import ConfigError, from_dict, section


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
