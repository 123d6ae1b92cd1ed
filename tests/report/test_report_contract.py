"""The writer-to-reader contract (docs/CONTRACTS.md): the real stages write the result files and
the report reads them.

The other report tests build their result trees by hand (conftest.build_fake_tree), so they
cannot notice when a stage and the report drift apart. Here the stage commands of dvc.yaml run
on a tiny synthetic dataset, in the DVC layout, under the default protocol (frozen: the shared
models are trained for one epoch, every method is only evaluated): `mmif fuse`, `mmif metrics`,
`mmif detect-base`, `mmif detect`, `mmif segment-base`, `mmif segment`, then `mmif report`.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from mmif.layout import Manifest, list_pairs
from report.loading import Results, load_confusion, load_predictions, load_results

REPO = Path(__file__).resolve().parents[2]
METHODS = ["ir", "vis", "max"]  # the report's baselines (vis, ir) and one fusion
SEEDS = [0, 1]
FUSION_METRICS = ["EN", "SF", "MI", "SSIM", "Qabf"]

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("single_thread")]


def _params() -> dict:
    """params.yaml with the shared models cut to one epoch on 64 x 48 images, seeds in-process."""
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    params["seeds"] = SEEDS
    params["metrics"] = {**(params.get("metrics") or {}), "names": FUSION_METRICS}
    detect, segment = params["detect"], params["segment"]
    detect.update(protocol="frozen", device="cpu", jobs=1)
    detect["base"] = {**detect["base"], "epochs": 1, "imgsz": 64, "batch": 4, "nbs": 4}
    segment.update(protocol="frozen", device="cpu", jobs=1)
    segment["base"] = {**segment["base"], "epochs": 1, "batch_size": 4, "crop_size": 32}
    params["report"] = {**params["report"], "bootstrap_samples": 50, "n_grid_images": 1}
    return params


def _mmif(*argv: str | Path) -> None:
    from mmif.cli import main

    status = main([str(a) for a in argv])
    assert status == 0, f"mmif {' '.join(map(str, argv))} exited with {status}"


@pytest.fixture(scope="module")
def workspace(tiny_synthetic: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A folder laid out like the repository after `dvc repro`, written by the stage commands."""
    ws = tmp_path_factory.mktemp("contract")
    shutil.copytree(tiny_synthetic, ws / "data" / "prepared")
    (ws / "params.yaml").write_text(yaml.safe_dump(_params()))
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(ws)  # the stage commands' relative paths, as dvc.yaml runs them
        for m in METHODS:
            _mmif("fuse", "--method", m, "--data", "data/prepared", "--out", f"data/fused/{m}")
            _mmif("metrics", "--data", "data/prepared", "--fused", f"data/fused/{m}",
                  "--out", f"results/fusion_metrics/{m}_per_image.csv",
                  "--json", f"results/fusion_metrics/{m}.json")  # fmt: skip
        for task in ("detect", "segment"):
            _mmif(f"{task}-base", "--data", "data/prepared", "--out", f"models/{task}_base")
            for m in METHODS:
                _mmif(task, "--method", m, "--data", "data/prepared", "--fused", f"data/fused/{m}",
                      "--base", f"models/{task}_base", "--out", f"results/{task}/{m}",
                      "--summary", f"results/scores/{task}/{m}.json",
                      "--curves", f"results/scores/{task}/{m}_curves.csv")  # fmt: skip
        _mmif("report", "--results", "results", "--data", "data/prepared", "--fused", "data/fused",
              "--out", "results/report")  # fmt: skip
    yield ws


@pytest.fixture(scope="module")
def results(workspace: Path) -> Results:
    return load_results(workspace / "results", workspace / "data" / "fused")


def _test_stems(ws: Path) -> list[str]:
    return [p.stem for p in list_pairs(ws / "data" / "prepared", "test")]


def test_loader_finds_every_method_seed_and_file(workspace, results):
    assert sorted(results.fusion) == sorted(METHODS)
    assert sorted(results.fused_info) == sorted(METHODS)
    for task in ("detect", "segment"):
        assert results.skipped[task] == {}, task
        assert sorted(results.runs[task]) == sorted(METHODS), task
        for m in METHODS:
            runs = results.runs[task][m]
            assert sorted(runs) == SEEDS, (task, m)
            for seed, run in runs.items():
                assert run.folder == workspace / "results" / task / m / f"seed_{seed}"
                assert run.metrics["protocol"] == "frozen" and run.metrics["seed"] == seed


def test_fusion_metrics_per_image_rows_are_the_test_stems(workspace, results):
    stems = _test_stems(workspace)
    for m in METHODS:
        table = results.fusion_per_image[m]
        assert list(table["name"]) == stems
        assert set(FUSION_METRICS) <= set(table.columns)
        means = results.fusion[m]
        assert means["n_images"] == len(stems) and means["convention"] == "cddfuse"
        for name in FUSION_METRICS:
            assert means[name] == pytest.approx(float(table[name].mean()), rel=1e-4), (m, name)


def test_detection_predictions_and_scores_read_back(workspace, results):
    manifest = Manifest.load(workspace / "data" / "prepared")
    stems = _test_stems(workspace)
    for m in METHODS:
        for run in results.runs["detect"][m].values():
            preds = load_predictions(run.folder / "predictions.json")
            assert preds.classes == list(manifest.det_classes)
            assert sorted(preds.stems) == stems
            assert set(preds.sizes) == {(64, 48)}
            assert sum(len(img.gt) for img in preds.images) > 0  # the labels went through
            for key in ("mAP50", "mAP50_95", "precision", "recall", "per_class"):
                assert key in run.metrics, key
            assert set(run.metrics["per_class"]) == set(manifest.det_classes)
            assert run.metrics["n_test_images"] == len(stems)


def test_segmentation_confusions_read_back(workspace, results):
    manifest = Manifest.load(workspace / "data" / "prepared")
    stems = _test_stems(workspace)
    n_pixels = 64 * 48
    for m in METHODS:
        for run in results.runs["segment"][m].values():
            conf = load_confusion(run.folder / "confusion.npz")
            assert conf.class_names == list(manifest.seg_classes)
            assert sorted(conf.stems) == stems
            # every pixel of every test image is counted once (no ignore label in synthetic masks)
            assert conf.reindexed(stems).sum(axis=(1, 2)).tolist() == [n_pixels] * len(stems)
            assert 0.0 <= run.metrics["mIoU"] <= 1.0
            assert set(run.metrics["per_class"]) <= set(manifest.seg_classes)


def test_seed_summaries_match_the_seed_files(workspace, results):
    for task, headline in (("detect", "mAP50"), ("segment", "mIoU")):
        for m in METHODS:
            doc = json.loads((workspace / "results" / "scores" / task / f"{m}.json").read_text())
            values = [run.metrics[headline] for run in results.runs[task][m].values()]
            assert doc["protocol"] == "frozen"
            assert doc[headline] == pytest.approx(float(np.mean(values)), abs=1e-12)
            assert sorted(int(s) for s in doc["per_seed"]) == SEEDS


def test_report_consumes_the_stage_outputs(workspace, results):
    out = workspace / "results" / "report"
    for name in ("report.html", "report.md", "summary.json"):
        assert (out / name).is_file(), name
    summary = json.loads((out / "summary.json").read_text())
    assert sorted(summary["methods"]) == sorted(METHODS)
    for m in METHODS:
        entry = summary["methods"][m]
        for task, headline in (("detect", "mAP50"), ("segment", "mIoU")):
            values = [run.metrics[headline] for run in results.runs[task][m].values()]
            assert entry[task]["n_seeds"] == len(SEEDS)
            assert entry[task]["protocol"] == "frozen"
            assert entry[task][headline] == pytest.approx(float(np.mean(values)), abs=1e-9)
        for name in FUSION_METRICS:
            assert entry["fusion"][name] == pytest.approx(results.fusion[m][name], rel=1e-9)
    # the comparison with the baselines was computed from the per-image files
    significance = pd.read_csv(out / "tables" / "significance.csv")
    assert {"detect", "segment"} <= set(significance["task"])
    assert "max" in set(significance["method"])
