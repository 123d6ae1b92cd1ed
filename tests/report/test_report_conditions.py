"""Day/night split of task scores: recomputed per condition from the saved per-image results."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from report.conditions import (
    condition_of,
    detection_by_condition,
    segmentation_by_condition,
)
from report.loading import SeedRun

BOX = [10.0, 10.0, 30.0, 30.0]


def _run(folder: Path, task: str, method: str, seed: int = 0) -> SeedRun:
    return SeedRun(task=task, method=method, seed=seed, folder=folder, metrics={})


def _write_predictions(folder: Path, found: dict[str, bool]) -> None:
    """One person per image; found[stem] says whether the run detected it."""
    images = [
        {
            "stem": stem,
            "width": 64,
            "height": 64,
            "gt": [[0, *BOX]],
            "pred": [[0, 0.9, *BOX]] if hit else [[0, 0.9, 40.0, 40.0, 60.0, 60.0]],
        }
        for stem, hit in found.items()
    ]
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "predictions.json").write_text(json.dumps({"classes": ["person"], "images": images}))


def test_condition_from_stem():
    assert condition_of("00012N") == "night"
    assert condition_of("test_00003D") == "day"
    assert condition_of("FLIR_0001") is None
    assert condition_of("") is None


def test_detection_ap_split_by_condition(tmp_path: Path):
    # "vis" finds people by day only, "ir" finds them in both conditions
    _write_predictions(tmp_path / "vis", {"a_0D": True, "a_1D": True, "a_2N": False, "a_3N": False})
    _write_predictions(tmp_path / "ir", {"a_0D": True, "a_1D": True, "a_2N": True, "a_3N": True})
    runs = {
        "vis": {0: _run(tmp_path / "vis", "detect", "vis")},
        "ir": {0: _run(tmp_path / "ir", "detect", "ir")},
    }
    table = detection_by_condition(runs, ["ir", "vis"]).set_index("method")
    assert list(table.columns) == ["person (day)", "person (night)"]
    assert table.loc["vis", "person (day)"] == pytest.approx(1.0)
    assert table.loc["vis", "person (night)"] == pytest.approx(0.0)
    assert table.loc["ir", "person (night)"] == pytest.approx(1.0)


def test_no_condition_in_names_gives_empty_table(tmp_path: Path):
    _write_predictions(tmp_path / "vis", {"img1": True, "img2": False})
    runs = {"vis": {0: _run(tmp_path / "vis", "detect", "vis")}}
    assert detection_by_condition(runs, ["vis"]).empty


def test_segmentation_iou_split_by_condition(tmp_path: Path):
    # 2 classes; the day image is segmented perfectly, the night one gets class 1 all wrong
    conf = np.zeros((2, 2, 2), dtype=np.int64)
    conf[0] = [[50, 0], [0, 50]]
    conf[1] = [[50, 0], [50, 0]]
    folder = tmp_path / "seg"
    folder.mkdir()
    np.savez(
        folder / "confusion.npz",
        stems=np.array(["x_0D", "x_1N"]),
        confusion=conf,
        class_names=np.array(["background", "person"]),
    )
    runs = {"vis": {0: _run(folder, "segment", "vis")}}
    table = segmentation_by_condition(runs, ["vis"]).set_index("method")
    assert table.loc["vis", "person (day)"] == pytest.approx(1.0)
    assert table.loc["vis", "person (night)"] == pytest.approx(0.0)
    assert table.loc["vis", "background (night)"] == pytest.approx(0.5)
