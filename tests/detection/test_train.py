"""End to end on a tiny dataset: the contract files, determinism, and scoring what was predicted."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from detection.ap import ImageDetections, detection_scores
from detection.config import DetectConfig
from detection.dataset import build_yolo_dataset
from detection.evaluate import coco_map, ultralytics_map, yolo_to_pixel_boxes
from mmif.labels import read_yolo_file

CONTRACT_KEYS = {
    "mAP50",
    "mAP50_95",
    "precision",
    "recall",
    "tm_mAP50",
    "tm_mAP50_95",
    "ul_mAP50",
    "ul_mAP50_95",
    "protocol",
    "per_class",
    "n_test_images",
    "epochs",
    "model",
    "pretrained",
    "seed",
}
CURVES_HEADER = "epoch,box_loss,cls_loss,dfl_loss,precision,recall,mAP50,mAP50_95"


def _tiny_config() -> DetectConfig:
    return DetectConfig(epochs=1, imgsz=64, batch=4, device="cpu", workers=0, warmup_epochs=0.0)


@pytest.fixture(scope="module")
def two_runs(det_data, tmp_path_factory) -> tuple[Path, Path, dict, dict]:
    from detection.train import train_and_evaluate

    data_root, fused_root = det_data
    out = tmp_path_factory.mktemp("detect")
    first = train_and_evaluate(fused_root, data_root, out / "a", _tiny_config(), seed=3)
    second = train_and_evaluate(fused_root, data_root, out / "b", _tiny_config(), seed=3)
    return out / "a", out / "b", first, second


@pytest.mark.slow
def test_training_writes_the_contract_files(two_runs, det_data) -> None:
    out, _, metrics, _ = two_runs
    data_root, fused_root = det_data
    assert sorted(p.name for p in out.iterdir()) == [
        "curves.csv",
        "metrics.json",
        "predictions.json",
    ]
    on_disk = json.loads((out / "metrics.json").read_text())
    assert on_disk == json.loads(json.dumps(metrics))
    assert CONTRACT_KEYS <= set(on_disk)
    assert on_disk["seed"] == 3 and on_disk["epochs"] == 1 and on_disk["pretrained"] is False
    assert on_disk["protocol"] == "retrain"
    assert on_disk["model"] == "yolov8n.yaml"
    from mmif.runtime import machine_description

    assert on_disk["machine"] == machine_description("cpu")  # where it trained and scored
    classes = ["person", "car", "bicycle"]
    assert set(on_disk["per_class"]) == set(classes)
    assert all(
        {"AP50", "AP50_95", "ul_AP50", "tm_AP50"} <= set(v) for v in on_disk["per_class"].values()
    )

    predictions = json.loads((out / "predictions.json").read_text())
    assert predictions["classes"] == classes
    test_stems = sorted(p.stem for p in (fused_root / "test").glob("*.png"))
    assert [im["stem"] for im in predictions["images"]] == test_stems
    assert on_disk["n_test_images"] == len(test_stems)
    for image in predictions["images"]:
        assert (image["width"], image["height"]) == (64, 48)
        labels = read_yolo_file(
            data_root / "test" / "labels" / f"{image['stem']}.txt", len(classes)
        )
        expected = yolo_to_pixel_boxes(labels, 64, 48)
        np.testing.assert_allclose(
            np.asarray(image["gt"]).reshape(-1, 5), np.asarray(expected).reshape(-1, 5), atol=0.01
        )
        for cls, score, x1, y1, x2, y2 in image["pred"]:
            assert cls in (0, 1, 2) and 0.001 <= score <= 1
            assert 0 <= x1 <= x2 <= 64 and 0 <= y1 <= y2 <= 48

    lines = (out / "curves.csv").read_text().splitlines()
    assert lines[0] == CURVES_HEADER
    assert len(lines) == 2 and lines[1].startswith("1,")
    assert all(v != "" for v in lines[1].split(","))


@pytest.mark.slow
def test_cross_check_matches_the_saved_predictions(two_runs) -> None:
    out, _, metrics, _ = two_runs
    images = json.loads((out / "predictions.json").read_text())["images"]
    classes = list(metrics["per_class"])
    assert coco_map(images, classes)["mAP50"] == pytest.approx(metrics["tm_mAP50"], abs=1e-9)
    assert ultralytics_map(images, classes)["mAP50"] == pytest.approx(metrics["ul_mAP50"], abs=0.01)
    # the headline mAP50 is the report's own AP of the saved predictions (detection.ap)
    own = detection_scores(
        [ImageDetections.from_lists(im["gt"], im["pred"]) for im in images], classes
    )
    assert own["mAP50"] == metrics["mAP50"] and own["mAP50_95"] == metrics["mAP50_95"]
    # ... which is the COCO definition: torchmetrics agrees up to its float32 recall points
    assert metrics["mAP50"] == pytest.approx(metrics["tm_mAP50"], abs=0.01)


@pytest.mark.slow
def test_same_seed_gives_identical_results(two_runs) -> None:
    a, b, first, second = two_runs
    assert first == second
    for name in ("metrics.json", "predictions.json", "curves.csv"):
        assert (a / name).read_bytes() == (b / name).read_bytes(), name


@pytest.mark.slow
def test_nothing_left_in_the_data_or_the_scratch_folder(two_runs, det_data) -> None:
    from detection.offline import cache_root

    for root in det_data:
        assert not list(root.rglob("*.cache")), f"ultralytics cache written into {root}"
    assert not list((cache_root() / "detect").glob("tiny-seed3-*")), (
        "scratch run folder not removed"
    )


def test_recorded_predictions_are_in_original_pixels(det_data, tmp_path) -> None:
    """Feed the ground truth as predictions: the records must reproduce the label boxes and mAP 1."""
    from ultralytics import YOLO

    from detection.yolo import RecordingValidator

    class GroundTruthValidator(RecordingValidator):
        def update_metrics(self, preds, batch):
            fake = []
            for si in range(len(preds)):
                target = self._prepare_batch(si, batch)
                n = target["cls"].shape[0]
                fake.append(
                    {
                        "bboxes": target["bboxes"].clone(),
                        "conf": torch.linspace(0.9, 0.5, n) if n else torch.zeros(0),
                        "cls": target["cls"].float().clone(),
                        "extra": torch.zeros(n, 0),
                    }
                )
            super().update_metrics(fake, batch)

    made = []

    def factory(args, _callbacks=None):
        made.append(GroundTruthValidator(args=args, _callbacks=_callbacks))
        return made[-1]

    data_root, fused_root = det_data
    ds = build_yolo_dataset(fused_root, data_root, tmp_path / "work")
    # imgsz 96 rescales 64 x 48 images by 1.5 and pads them, so the back-conversion is exercised
    metrics = YOLO("yolov8n.yaml").val(
        validator=factory,
        data=str(ds.yaml_path),
        split="test",
        imgsz=96,
        batch=2,
        device="cpu",
        plots=False,
        verbose=False,
        project=str(tmp_path / "runs"),
        name="gt",
        exist_ok=True,
    )
    records = made[-1].records
    assert sorted(records) == ds.stems["test"]
    for stem in ds.stems["test"]:
        expected = yolo_to_pixel_boxes(read_yolo_file(ds.label_path("test", stem), 3), 64, 48)
        got = records[stem]["pred"]
        assert (records[stem]["width"], records[stem]["height"]) == (64, 48)
        order = np.lexsort(np.asarray(expected, dtype=float).T[::-1]) if expected else []
        exp = np.asarray(expected, dtype=float).reshape(-1, 5)[order]
        got_rows = got[:, [0, 2, 3, 4, 5]]
        got_rows = got_rows[np.lexsort(got_rows.T[::-1])]
        np.testing.assert_allclose(
            got_rows, exp, atol=0.7
        )  # within a pixel after letterbox and back
    assert metrics.box.map50 == pytest.approx(0.995, abs=0.006)


@pytest.mark.slow
def test_ema_tau_reaches_the_trainer(det_data, tmp_path, monkeypatch) -> None:
    import detection.yolo
    from detection.train import train_and_evaluate

    taus = []
    ramp = detection.yolo.ema_decay

    def recording(updates: int, tau: float, decay: float = 0.9999) -> float:
        taus.append(tau)
        return ramp(updates, tau, decay)

    monkeypatch.setattr(detection.yolo, "ema_decay", recording)
    data_root, fused_root = det_data
    cfg = DetectConfig(**{**_tiny_config().__dict__, "ema_tau": 7.0})
    train_and_evaluate(fused_root, data_root, tmp_path / "run", cfg, seed=0)
    assert taus and set(taus) == {7.0}  # every optimiser step's average used the configured ramp
