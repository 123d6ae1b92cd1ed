"""DenseFuse: network shapes, fusion rules, a short CPU training run, checkpoints and resume."""

from __future__ import annotations

import csv
import json
import logging
from dataclasses import replace
from pathlib import Path

import pytest
import torch

import fusion.densefuse.train as train_module
from fusion.densefuse import DenseFuseConfig, DenseFuseNet, train_densefuse
from fusion.densefuse.rules import fuse_addition, fuse_features, fuse_l1_norm
from fusion.registry import create_method, is_trainable, method_params, train_method
from mmif.errors import ConfigError

TINY = DenseFuseConfig(
    epochs=3, patches_per_step=8, lr=1e-3, patch_size=32, patches_per_image=2, device="cpu"
)


@pytest.fixture(scope="module")
def trained(tiny_synthetic, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("densefuse")
    train_densefuse(tiny_synthetic, out, TINY, progress=False)
    return out


def test_network_keeps_any_size_and_has_64_feature_channels():
    net = DenseFuseNet()
    for size in [(1, 1), (7, 9), (32, 17)]:
        x = torch.rand(2, 1, *size)
        assert net.encode(x).shape == (2, 64, *size)
        assert net(x).shape == x.shape


def test_fusion_rules():
    a, b = torch.rand(2, 64, 5, 6), torch.rand(2, 64, 5, 6)
    torch.testing.assert_close(fuse_addition(a, b), a + b)
    torch.testing.assert_close(fuse_l1_norm(a, a), a)  # equal activity: the same map
    torch.testing.assert_close(
        fuse_l1_norm(a, torch.zeros_like(b)), a
    )  # silent source gets no weight
    torch.testing.assert_close(fuse_features(a, b, "l1_norm"), fuse_l1_norm(a, b))
    with pytest.raises(ValueError, match="unknown DenseFuse fusion rule"):
        fuse_features(a, b, "max")


def test_config_from_params_names_bad_keys():
    assert (
        method_params("densefuse", {"fusion_rule": "l1_norm", "epochs": 2}).fusion_rule == "l1_norm"
    )
    with pytest.raises(ConfigError, match="fusion.densefuse.fusion_rule"):
        method_params("densefuse", {"fusion_rule": "max"})
    with pytest.raises(ConfigError, match="fusion.densefuse.epoch"):
        method_params("densefuse", {"epoch": 2})


@pytest.mark.slow
def test_training_writes_outputs_and_loss_falls(trained):
    rows = list(csv.DictReader((trained / "loss_curve.csv").open()))
    metrics = json.loads((trained / "train_metrics.json").read_text())
    n_patches = 6 * 2 * TINY.patches_per_image  # 6 train pairs, both modalities
    steps_per_epoch = -(-n_patches // TINY.patches_per_step)
    assert len(rows) == metrics["steps"] == TINY.epochs * steps_per_epoch
    assert list(rows[0]) == ["step", "epoch", "loss"]
    assert metrics["n_patches"] == n_patches and metrics["n_train_images"] == 12
    assert metrics["final_loss"] < 0.9 * metrics["first_epoch_loss"]
    assert sorted(p.name for p in trained.iterdir()) == [
        "checkpoints",  # last.pt: continued by a run with more epochs
        "densefuse.pt",
        "loss_curve.csv",
        "train_metrics.json",
    ]
    ckpt = torch.load(trained / "densefuse.pt", weights_only=True)
    assert ckpt["config"]["epochs"] == TINY.epochs and "state_dict" in ckpt


@pytest.mark.slow
def test_checkpoint_reloads_into_the_registered_method(trained, tiny_synthetic):
    method = create_method(
        "densefuse", {"fusion_rule": "l1_norm"}, weights=trained / "densefuse.pt"
    )
    saved = torch.load(trained / "densefuse.pt", weights_only=True)["state_dict"]
    for k, v in method.model.state_dict().items():
        torch.testing.assert_close(v, saved[k])
    ir, vis = torch.rand(2, 1, 21, 19), torch.rand(2, 3, 21, 19)
    out = method.fuse(ir, vis)
    assert out.shape == (2, 3, 21, 19) and 0 <= out.min() and out.max() <= 1
    batch = method.fuse(ir, vis)
    single = torch.cat([method.fuse(ir[i : i + 1], vis[i : i + 1]) for i in range(2)])
    torch.testing.assert_close(batch, single, atol=1e-5, rtol=0)
    info = method.info()
    assert info["trained"] is True and info["fusion_rule"] == "l1_norm" and "warning" not in info


@pytest.mark.slow
def test_training_is_deterministic_and_resumes_to_the_same_weights(
    trained, tiny_synthetic, tmp_path, monkeypatch
):
    reference = torch.load(trained / "densefuse.pt", weights_only=True)["state_dict"]
    calls = {"n": 0}
    real_loss = train_module.reconstruction_loss

    def failing_loss(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 2 * 3 + 1:  # first step of the third epoch (3 steps per epoch)
            raise KeyboardInterrupt
        return real_loss(*args, **kwargs)

    monkeypatch.setattr(train_module, "reconstruction_loss", failing_loss)
    with pytest.raises(KeyboardInterrupt):
        train_densefuse(tiny_synthetic, tmp_path, TINY, progress=False)
    checkpoint = tmp_path / "checkpoints" / train_module.CHECKPOINT_NAME
    assert checkpoint.exists() and not (tmp_path / "densefuse.pt").exists()
    monkeypatch.setattr(train_module, "reconstruction_loss", real_loss)
    train_densefuse(tiny_synthetic, tmp_path, TINY, progress=False)
    resumed = torch.load(tmp_path / "densefuse.pt", weights_only=True)["state_dict"]
    for k, v in reference.items():
        torch.testing.assert_close(resumed[k], v, atol=0, rtol=0)
    assert checkpoint.exists()  # kept: a run with more epochs continues from it


@pytest.mark.slow
def test_more_epochs_continue_and_other_changes_start_afresh(tiny_synthetic, tmp_path, caplog):
    two = replace(TINY, epochs=2)
    train_densefuse(tiny_synthetic, tmp_path / "grown", replace(TINY, epochs=1), progress=False)
    with caplog.at_level(logging.INFO):
        train_densefuse(tiny_synthetic, tmp_path / "grown", two, progress=False)
    assert "continuing from" in caplog.text and "3 of 6 steps done" in caplog.text
    train_densefuse(tiny_synthetic, tmp_path / "fresh", two, progress=False)
    grown = torch.load(tmp_path / "grown" / "densefuse.pt", weights_only=True)["state_dict"]
    fresh = torch.load(tmp_path / "fresh" / "densefuse.pt", weights_only=True)["state_dict"]
    for k, v in fresh.items():
        torch.testing.assert_close(grown[k], v, atol=0, rtol=0)
    caplog.clear()
    with caplog.at_level(logging.INFO):
        train_densefuse(tiny_synthetic, tmp_path / "grown", replace(two, lr=2e-3), progress=False)
    assert "not continued (lr changed" in caplog.text
    caplog.clear()
    with caplog.at_level(logging.INFO):
        train_densefuse(
            tiny_synthetic, tmp_path / "grown", replace(two, lr=2e-3, epochs=1), progress=False
        )
    assert "more than the 3 configured" in caplog.text


@pytest.mark.slow
def test_step_budget_stops_mid_epoch_and_grows_from_whole_epochs(tiny_synthetic, tmp_path, caplog):
    # 24 patches, batch 8: 3 steps per epoch; 5 steps = one epoch and 2 steps of the second
    five = replace(TINY, epochs=1, steps=5)
    train_densefuse(tiny_synthetic, tmp_path / "five", five, progress=False)
    metrics = json.loads((tmp_path / "five" / "train_metrics.json").read_text())
    assert (metrics["steps"], metrics["epochs"], metrics["patches_seen"]) == (5, 2, 40)
    rows = list(csv.DictReader((tmp_path / "five" / "loss_curve.csv").open()))
    assert [r["epoch"] for r in rows] == ["0", "0", "0", "1", "1"]
    # a budget that ended mid-epoch is not continued (it would skip the rest of that epoch) ...
    with caplog.at_level(logging.INFO):
        train_densefuse(tiny_synthetic, tmp_path / "five", replace(five, steps=6), progress=False)
    assert "in the middle of an epoch" in caplog.text
    # ... one that ended on a whole epoch is, and gives the weights of a fresh run
    train_densefuse(tiny_synthetic, tmp_path / "grown", replace(five, steps=3), progress=False)
    caplog.clear()
    with caplog.at_level(logging.INFO):
        train_densefuse(tiny_synthetic, tmp_path / "grown", replace(five, steps=6), progress=False)
    assert "3 of 6 steps done" in caplog.text
    fresh = torch.load(tmp_path / "five" / "densefuse.pt", weights_only=True)["state_dict"]
    grown = torch.load(tmp_path / "grown" / "densefuse.pt", weights_only=True)["state_dict"]
    for k, v in fresh.items():  # "five" was retrained from scratch with 6 steps above
        torch.testing.assert_close(grown[k], v, atol=0, rtol=0)
    with pytest.raises(ConfigError, match="steps must be >= 1"):
        method_params("densefuse", {"steps": 0})


@pytest.mark.slow
def test_registered_trainer_and_missing_weights(tiny_synthetic, tmp_path, caplog):
    assert is_trainable("densefuse")
    params = {
        "epochs": 1,
        "patches_per_step": 8,
        "patch_size": 16,
        "patches_per_image": 1,
        "device": "cpu",
    }
    weights = train_method("densefuse", tiny_synthetic, tmp_path, params)
    assert weights == tmp_path / "densefuse.pt" and weights.exists()
    with caplog.at_level(logging.WARNING):
        untrained = create_method("densefuse", {})
    assert "DENSEFUSE HAS NO WEIGHTS" in caplog.text
    assert untrained.info()["trained"] is False and "untrained" in untrained.info()["warning"]
    with pytest.raises(FileNotFoundError, match="mmif train --method densefuse"):
        create_method("densefuse", {}, weights=tmp_path / "absent.pt")


def test_empty_training_split_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="no training pairs"):
        train_densefuse(tmp_path, tmp_path / "out", replace(TINY, epochs=1), progress=False)
