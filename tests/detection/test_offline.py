"""ultralytics is configured offline and project-local before it is first imported."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from detection.offline import offline_check_amp, project_root, yolo_config_dir

REPO = Path(__file__).resolve().parents[2]

PROBE = """
import json, os, sys
assert "ultralytics" not in sys.modules
import detection.yolo  # configures, then imports ultralytics
import ultralytics.engine.trainer as trainer
from ultralytics.utils import ONLINE, SETTINGS, USER_CONFIG_DIR, WEIGHTS_DIR, RUNS_DIR
from detection.offline import offline_check_amp
print(json.dumps({
    "env": {k: os.environ.get(k) for k in ("YOLO_CONFIG_DIR", "YOLO_OFFLINE", "YOLO_AUTOINSTALL", "HF_HUB_OFFLINE")},
    "user_config_dir": str(USER_CONFIG_DIR),
    "weights_dir": str(WEIGHTS_DIR),
    "runs_dir": str(RUNS_DIR),
    "online": ONLINE,
    "settings": {k: SETTINGS[k] for k in ("sync", "dvc", "mlflow", "clearml", "comet", "wandb", "api_key")},
    "amp_patched": trainer.check_amp is offline_check_amp,
}))
"""


@pytest.fixture(scope="module")
def probe() -> dict:
    env = {
        k: v for k, v in os.environ.items() if not k.startswith(("YOLO_", "ULTRALYTICS_", "HF_HUB"))
    }
    env["ULTRALYTICS_API_KEY"] = "must-be-dropped"
    result = subprocess.run(
        [sys.executable, "-c", PROBE],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_environment_is_set_before_import(probe: dict) -> None:
    assert Path(probe["env"]["YOLO_CONFIG_DIR"]) == yolo_config_dir()
    assert probe["env"]["YOLO_OFFLINE"] == "1"
    assert probe["env"]["HF_HUB_OFFLINE"] == "1"
    assert probe["env"]["YOLO_AUTOINSTALL"] == "false"
    assert probe["online"] is False  # no update checks, no downloads attempted by design


def test_config_weights_and_runs_dirs_are_inside_the_project(probe: dict) -> None:
    root = project_root()
    for key in ("user_config_dir", "weights_dir", "runs_dir"):
        assert root in Path(probe[key]).parents, f"{key} = {probe[key]} is outside {root}"


def test_integrations_and_analytics_are_off(probe: dict) -> None:
    assert probe["settings"] == {
        "sync": False,
        "dvc": False,
        "mlflow": False,
        "clearml": False,
        "comet": False,
        "wandb": False,
        "api_key": "",
    }


def test_fonts_are_present_so_none_is_downloaded(probe: dict) -> None:
    for name in ("Arial.ttf", "Arial.Unicode.ttf"):
        font = Path(probe["user_config_dir"]) / name
        assert font.is_file() and font.stat().st_size > 100_000


def test_amp_check_is_replaced(probe: dict) -> None:
    assert probe["amp_patched"] is True


def test_offline_amp_check_is_off_on_cpu() -> None:
    import torch

    assert offline_check_amp(torch.nn.Conv2d(3, 4, 3)) is False


def test_missing_pt_model_is_a_clear_error(tmp_path) -> None:
    from detection.config import DetectConfig
    from detection.train import _load_model

    cfg = DetectConfig()
    cfg.model = str(tmp_path / "absent.pt")  # bypasses validate() on purpose
    with pytest.raises(FileNotFoundError, match="nothing is downloaded"):
        _load_model(cfg)


def test_settings_file_keeps_other_keys(tmp_path, monkeypatch) -> None:
    from detection import offline

    monkeypatch.setattr(offline, "yolo_config_dir", lambda: tmp_path / "ultralytics")
    monkeypatch.setenv("YOLO_CONFIG_DIR", str(tmp_path / "elsewhere"))
    config = tmp_path / "ultralytics" / "Ultralytics"
    config.mkdir(parents=True)
    (config / "settings.json").write_text(json.dumps({"uuid": "abc", "dvc": True}))
    assert offline.configure_environment() == config
    settings = json.loads((config / "settings.json").read_text())
    assert settings["uuid"] == "abc" and settings["dvc"] is False
    assert os.environ["YOLO_CONFIG_DIR"] == str(tmp_path / "ultralytics")


def test_worker_thread_share_reaches_ultralytics(monkeypatch) -> None:
    # ultralytics resets torch's threads to (cores - 1) on CPU; a seed worker keeps its share
    from detection import offline

    offline.import_ultralytics()
    from ultralytics.utils import torch_utils

    monkeypatch.setattr(torch_utils, "NUM_THREADS", 99)
    monkeypatch.delenv(offline.THREADS_ENV, raising=False)
    offline._limit_threads()
    assert torch_utils.NUM_THREADS == 99  # not a worker: ultralytics' own choice stands
    monkeypatch.setenv(offline.THREADS_ENV, "1")
    offline._limit_threads()
    assert torch_utils.NUM_THREADS == 1
