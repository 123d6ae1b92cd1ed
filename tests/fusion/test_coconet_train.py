"""CoCoNet training: salient-mask sources, patch sampling, a short run, outputs and resume."""

from __future__ import annotations

import copy
import csv
import json
import logging
import math
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

import fusion.coconet.train as coconet_train
from fusion.coconet.config import CoCoNetConfig
from fusion.coconet.train import (
    batchnorm_layers,
    extract_patches,
    load_training_data,
    salient_from_infrared,
    salient_from_labels,
    sample_patches,
    train_coconet,
    training_autocast,
)
from fusion.registry import create_method, method_params
from metrics import compute_metrics
from mmif.io import to_tensor, write_image, write_text
from mmif.layout import Manifest
from preparation.synthetic import DET_CLASSES, SyntheticConfig, generate


def build_prepared(root: Path, n_train: int = 4, width: int = 64, height: int = 48) -> Path:
    """A tiny prepared dataset (train split only) with salient masks and YOLO labels."""
    cfg = SyntheticConfig(width=width, height=height, n_train=n_train, n_val=0, n_test=0, seed=3)
    for scene in generate(cfg):
        d = root / scene.split
        write_image(d / "ir" / f"{scene.stem}.png", scene.ir)
        write_image(d / "vis" / f"{scene.stem}.png", scene.vis)
        write_image(d / "salient" / f"{scene.stem}.png", scene.salient)
        lines = [f"{c} {cx:.6f} {cy:.6f} {w:.6f} {h:.6f}" for c, cx, cy, w, h in scene.boxes]
        write_text(d / "labels" / f"{scene.stem}.txt", "\n".join(lines) + "\n")
    Manifest(
        name="tiny", provenance="tests", splits={"train": n_train}, det_classes=list(DET_CLASSES)
    ).save(root)
    return root


pytestmark = pytest.mark.usefixtures("single_thread")  # tiny tensors (tests/conftest.py)


@pytest.fixture(scope="module")
def prepared(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_prepared(tmp_path_factory.mktemp("coconet_data") / "prepared")


def tiny_config(**overrides) -> CoCoNetConfig:
    params = {
        "stage1": {"epochs": 3, "patches_per_step": 4, "lr": 1e-3},
        "stage2": {"epochs": 1, "patches_per_step": 4, "lr": 1e-4},
        "patch_size": 32,
        "patches_per_image": 2,
        # a tenth of the default's BatchNorm re-estimation: at 4 patches per batch the default's
        # 600 patches took 10 s of a 12 s tiny training (the drift test below uses the default)
        "bn_recalibration": 60,
        "device": "cpu",
    }
    params.update(overrides)
    return method_params("coconet", params)


def test_salient_from_labels_boxes_and_classes(tmp_path: Path):
    labels = tmp_path / "a.txt"
    labels.write_text("0 0.25 0.5 0.5 0.5\n2 0.875 0.125 0.25 0.25\n\n")
    mask = salient_from_labels(labels, (8, 8))
    assert mask[2:6, 0:4].all() and mask[0:2, 6:8].all() and mask.sum() == 16 + 4
    only_people = salient_from_labels(labels, (8, 8), classes={0})
    assert only_people.sum() == 16 and not only_people[0:2, 6:8].any()
    assert not salient_from_labels(None, (8, 8)).any()
    labels.write_text("0 0.5 oops\n")
    with pytest.raises(ValueError, match="a.txt:1"):
        salient_from_labels(labels, (8, 8))


def test_salient_from_infrared_finds_the_hot_spot():
    ir = np.full((40, 40), 60, dtype=np.uint8)
    ir[10:18, 20:26] = 220
    mask = salient_from_infrared(ir)
    assert mask[12:16, 21:25].all() and not mask[30:, :].any() and not mask[:, :10].any()
    assert not salient_from_infrared(np.full((10, 10), 5, dtype=np.uint8)).any()


def test_salient_source_order(prepared: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture):
    cfg = tiny_config()
    with caplog.at_level(logging.INFO, logger="fusion.coconet.train"):
        data = load_training_data(prepared, cfg)
    assert data.salient_source == "salient" and any(
        "salient/ masks" in r.message for r in caplog.records
    )
    copy = tmp_path / "prepared"
    shutil.copytree(prepared, copy)
    shutil.rmtree(copy / "train" / "salient")
    from_labels = load_training_data(copy, tiny_config(salient_classes=["person", 1]))
    assert from_labels.salient_source == "labels"
    with pytest.raises(ValueError, match="truck"):
        load_training_data(copy, tiny_config(salient_classes=["truck"]))
    shutil.rmtree(copy / "train" / "labels")
    assert load_training_data(copy, cfg).salient_source == "ir_saliency"


def test_patches_are_seeded_and_stage2_patches_hold_targets(prepared: Path):
    cfg = tiny_config(patches_per_image=5)
    data = load_training_data(prepared, cfg)
    a, b = sample_patches(data, cfg, 1, 0), sample_patches(data, cfg, 1, 0)
    assert np.array_equal(a, b) and len(a) == 5 * len(data)
    assert not np.array_equal(a, sample_patches(data, cfg, 1, 1))
    stage2 = sample_patches(data, cfg, 2, 0)
    assert len(stage2) == 5 * sum(bool(m.any()) for m in data.salient)
    patches = extract_patches(data, stage2, cfg.patch_size)
    assert patches.shape == (len(stage2), 3, 32, 32) and 0 <= patches.min() and patches.max() <= 1
    assert (patches[:, 2].flatten(1).amax(dim=1) == 1.0).all()  # every stage-2 patch has a target


def _curve(out: Path) -> list[dict[str, str]]:
    with open(out / "loss_curve.csv") as f:
        return list(csv.DictReader(f))


@pytest.mark.slow
def test_short_training_lowers_the_loss_and_writes_outputs(prepared: Path, tmp_path: Path):
    out = tmp_path / "model"
    cfg = tiny_config(stage1={"epochs": 4, "patches_per_step": 4, "lr": 2e-3})
    weights = train_coconet(prepared, out, cfg, progress=False)
    assert weights == out / "coconet.pt"
    rows = _curve(out)
    assert list(rows[0]) == ["step", "epoch", "stage", "loss", "loss_ssim", "loss_mse", "loss_con"]
    stage1 = [r for r in rows if r["stage"] == "1"]
    first = np.mean([float(r["loss"]) for r in stage1 if r["epoch"] == "1"])
    last = np.mean([float(r["loss"]) for r in stage1 if r["epoch"] == "4"])
    assert last < 0.9 * first
    stage2 = [r for r in rows if r["stage"] == "2"]
    assert (
        stage2
        and all(float(r["loss_con"]) > 0 for r in stage2)
        and all(r["loss_con"] == "" for r in stage1)
    )

    metrics = json.loads((out / "train_metrics.json").read_text())
    assert metrics["vgg_pretrained"] is False and metrics["salient_source"] == "salient"
    assert metrics["epochs"] == 5 and metrics["n_patches"] == 8 and metrics["seconds"] > 0
    assert metrics["stage1_final_loss"] == pytest.approx(last, rel=1e-4)
    assert metrics["stage2_final_loss"] > 0
    final = torch.load(weights, weights_only=True)
    assert final["vgg_pretrained"] is False and final["config"]["stage1"]["epochs"] == 4
    assert metrics["stage1_steps"] == 8 and metrics["stage1_patches_seen"] == 32
    assert metrics["stage2_epochs"] == 1
    assert metrics["stage2_steps"] == math.ceil(metrics["n_patches_stage2"] / 4)
    ckpt = torch.load(out / "checkpoints" / "last.pt", weights_only=True)
    assert (ckpt["stage"], ckpt["stage_step"]) == (
        2,
        metrics["stage2_steps"],
    ) and "optimizer" in ckpt
    assert (out / "salient_overlays.png").stat().st_size > 0

    # the trained network fuses unseen scenes better than the untrained one (same architecture)
    scenes = list(
        generate(SyntheticConfig(width=64, height=48, n_train=3, n_val=0, n_test=0, seed=11))
    )
    ir = torch.cat([to_tensor(s.ir) for s in scenes])
    vis = torch.cat([to_tensor(s.vis) for s in scenes]).mean(1, keepdim=True)
    names = ["SSIM", "Qabf", "PSNR"]
    scores = {}
    for label, w in (("trained", weights), ("untrained", None)):
        method = create_method("coconet", {}, weights=w, device="cpu")
        fused = method.fuse(ir, vis)
        scores[label] = {
            k: float(v.mean()) for k, v in compute_metrics(ir, vis, fused, names).items()
        }
    for k in names:
        assert scores["trained"][k] > scores["untrained"][k], (k, scores)


@pytest.mark.slow
def test_resume_continues_from_the_last_finished_epoch(
    prepared: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
):
    one = tiny_config(stage1={"epochs": 1, "patches_per_step": 4, "lr": 1e-3}, stage2={"epochs": 0})
    two = tiny_config(stage1={"epochs": 2, "patches_per_step": 4, "lr": 1e-3}, stage2={"epochs": 0})
    resumed, fresh = tmp_path / "resumed", tmp_path / "fresh"
    train_coconet(prepared, resumed, one, progress=False)  # as if killed after epoch 1
    first_rows = _curve(resumed)
    with caplog.at_level(logging.INFO, logger="fusion.coconet.train"):
        train_coconet(prepared, resumed, two, progress=False)
    assert any("resuming" in r.message and "2 steps done" in r.message for r in caplog.records)
    rows = _curve(resumed)
    assert [r["epoch"] for r in rows] == ["1"] * len(first_rows) + ["2"] * len(first_rows)
    assert rows[: len(first_rows)] == first_rows  # epoch 1 was not trained again
    assert json.loads((resumed / "train_metrics.json").read_text())["epochs"] == 2

    # on CPU the resumed run equals an uninterrupted one
    train_coconet(prepared, fresh, two, progress=False)
    a = torch.load(resumed / "coconet.pt", weights_only=True)["model"]
    b = torch.load(fresh / "coconet.pt", weights_only=True)["model"]
    assert all(torch.equal(a[k], b[k]) for k in a)

    # a checkpoint made with other training settings is not resumed
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="fusion.coconet.train"):
        train_coconet(
            prepared,
            resumed,
            tiny_config(
                seed=5,
                stage1={"epochs": 1, "patches_per_step": 4, "lr": 1e-3},
                stage2={"epochs": 0},
            ),
            progress=False,
        )
    assert any("seed changed" in r.message for r in caplog.records)
    assert [r["epoch"] for r in _curve(resumed)] == ["1"] * len(first_rows)


@pytest.mark.slow
def test_stage2_continues_the_stage1_optimiser_and_resumes_exactly(prepared: Path, tmp_path: Path):
    s1 = {"epochs": 2, "patches_per_step": 4, "lr": 1e-3}
    only1 = tiny_config(stage1=s1, stage2={"epochs": 0, "patches_per_step": 4, "lr": 1e-4})
    both = tiny_config(stage1=s1, stage2={"epochs": 1, "patches_per_step": 4, "lr": 1e-4})
    resumed, fresh = tmp_path / "resumed", tmp_path / "fresh"
    train_coconet(prepared, resumed, only1, progress=False)  # as if stopped after stage 1
    train_coconet(prepared, resumed, both, progress=False)  # goes on into stage 2
    train_coconet(prepared, fresh, both, progress=False)
    a = torch.load(resumed / "coconet.pt", weights_only=True)["model"]
    b = torch.load(fresh / "coconet.pt", weights_only=True)["model"]
    assert all(torch.equal(a[k], b[k]) for k in a)

    # one Adam for both stages: its moments and step count carry over, only the lr changes
    metrics = json.loads((fresh / "train_metrics.json").read_text())
    n_steps = metrics["stage1_steps"] + metrics["stage2_steps"]
    assert metrics["stage1_steps"] == 4 and metrics["stage2_steps"] >= 1
    state = torch.load(fresh / "checkpoints" / "last.pt", weights_only=True)["optimizer"]
    assert state["state"] and all(int(v["step"]) == n_steps for v in state["state"].values())
    assert [g["lr"] for g in state["param_groups"]] == [1e-4]


@pytest.mark.slow
def test_step_budget_ends_mid_epoch_and_can_grow(prepared: Path, tmp_path: Path):
    # 4 pairs x 2 patches per epoch, batch 4: 2 steps per epoch; 3 steps end inside epoch 2
    def cfg(steps: int) -> CoCoNetConfig:
        return tiny_config(
            stage1={"steps": steps, "patches_per_step": 4, "lr": 1e-3}, stage2={"epochs": 0}
        )

    resumed, fresh = tmp_path / "resumed", tmp_path / "fresh"
    train_coconet(prepared, resumed, cfg(3), progress=False)
    assert [r["epoch"] for r in _curve(resumed)] == ["1", "1", "2"]
    metrics = json.loads((resumed / "train_metrics.json").read_text())
    assert (metrics["stage1_steps"], metrics["stage1_patches_seen"]) == (3, 12)
    train_coconet(prepared, resumed, cfg(5), progress=False)
    assert [r["epoch"] for r in _curve(resumed)] == ["1", "1", "2", "2", "3"]
    train_coconet(prepared, fresh, cfg(5), progress=False)
    a = torch.load(resumed / "coconet.pt", weights_only=True)["model"]
    b = torch.load(fresh / "coconet.pt", weights_only=True)["model"]
    assert all(torch.equal(a[k], b[k]) for k in a)


def _population_statistics(model, data, cfg, n_epochs: int = 6):
    """Per BatchNorm layer: the channel means and variances of its input over random stage-1
    patches (whole-image content) in train mode, collected with hooks (running statistics untouched)."""
    model = copy.deepcopy(model).train()  # a copy: its running statistics may change
    layers = batchnorm_layers(model)
    sums = [[0.0, 0.0, 0] for _ in layers]

    def hook(k):
        def fn(_module, inputs):
            x = inputs[0].detach().float()
            sums[k][0] = sums[k][0] + x.mean(dim=(0, 2, 3))
            sums[k][1] = sums[k][1] + x.var(dim=(0, 2, 3))
            sums[k][2] += 1

        return fn

    handles = [m.register_forward_pre_hook(hook(k)) for k, m in enumerate(layers)]
    with torch.no_grad():
        for epoch in range(n_epochs):
            specs = sample_patches(data, cfg, 1, 1000 + epoch)
            for s in range(0, len(specs), 4):
                batch = extract_patches(data, specs[s : s + 4], cfg.patch_size)
                model(batch[:, :1], batch[:, 1:2])
    for h in handles:
        h.remove()
    return [(m / n, v / n) for m, v, n in sums]


def _drift(weights: Path, data, cfg) -> float:
    """Largest (over layers) mean distance between the running means used at inference and the
    population means of whole-image patches, in population standard deviations."""
    model = create_method("coconet", {}, weights=weights, device="cpu").model
    population = _population_statistics(model, data, cfg)
    return max(
        float(((m.running_mean - mu).abs() / (var + 1e-5).sqrt()).mean())
        for m, (mu, var) in zip(batchnorm_layers(model), population, strict=True)
    )


@pytest.mark.slow
def test_batchnorm_statistics_do_not_drift_towards_targets_in_stage2(
    prepared: Path, tmp_path: Path
):
    # stage 2 trains on target-centred patches; inference must still normalise with statistics
    # of whole images (same weights either way: only the running statistics differ)
    stages = {
        "stage1": {"epochs": 3, "patches_per_step": 4, "lr": 1e-3},
        "stage2": {"epochs": 6, "patches_per_step": 4, "lr": 1e-3},
    }
    cfg = tiny_config(**stages, bn_recalibration=CoCoNetConfig.bn_recalibration)
    data = load_training_data(prepared, cfg)
    drifted = train_coconet(
        prepared, tmp_path / "drifted", tiny_config(**stages, bn_recalibration=0), progress=False
    )
    fixed = train_coconet(prepared, tmp_path / "fixed", cfg, progress=False)
    drift_before, drift_after = _drift(drifted, data, cfg), _drift(fixed, data, cfg)
    assert drift_after < 0.5 * drift_before, (drift_after, drift_before)


@pytest.mark.parametrize("native", [False, True])
def test_amp_cpu_trains_in_bfloat16_only_where_the_cpu_has_it(
    native: bool,
    prepared: Path,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
):
    # params.yaml turns amp_cpu on; a CPU without native bfloat16 must train in float32 and say so
    monkeypatch.setattr(coconet_train, "native_bfloat16", lambda device: native)
    cfg = tiny_config(amp_cpu=True, stage1={"epochs": 1, "patches_per_step": 4, "lr": 1e-3})
    cpu = torch.device("cpu")
    assert training_autocast(cfg, cpu) is native
    assert training_autocast(tiny_config(amp_cpu=False), cpu) is False
    out = tmp_path / "model"
    with caplog.at_level(logging.INFO, logger="fusion.coconet.train"):
        train_coconet(prepared, out, cfg, progress=False)
    metrics = json.loads((out / "train_metrics.json").read_text())
    assert metrics["autocast_bfloat16"] is native
    assert math.isfinite(metrics["stage1_final_loss"]) and math.isfinite(
        metrics["stage2_final_loss"]
    )
    said = "trains under bfloat16 autocast" if native else "no native bfloat16; training in float32"
    assert said in caplog.text
