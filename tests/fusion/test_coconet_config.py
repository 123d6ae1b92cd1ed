"""CoCoNetConfig: published defaults, nested stages, validation naming the key."""

from __future__ import annotations

import pytest

from fusion.coconet.config import CoCoNetConfig
from fusion.registry import method_params
from mmif.config import section
from mmif.errors import ConfigError


def test_defaults_follow_the_published_schedule():
    cfg = method_params("coconet", {})
    assert isinstance(cfg, CoCoNetConfig)
    assert (cfg.stage1.epochs, cfg.stage1.patches_per_step, cfg.stage1.lr) == (30, 30, 1e-4)
    assert (cfg.stage2.epochs, cfg.stage2.patches_per_step, cfg.stage2.lr) == (2, 30, 1e-4)
    assert (cfg.images_per_pass, cfg.tile_size, cfg.tile_overlap) == (4, 1024, 64)
    assert (cfg.patch_size, cfg.n_negatives, cfg.lambda_con, cfg.c1, cfg.c2, cfg.ssim_weight) == (
        64,
        3,
        1.0,
        0.5,
        0.75,
        20.0,
    )
    assert cfg.vgg_weights is None and cfg.salient_classes is None


def test_partial_stage_keeps_its_own_defaults():
    cfg = method_params(
        "coconet",
        {"stage2": {"lr": 1e-5}, "salient_classes": ["person", 2], "vgg_weights": "w.pth"},
    )
    assert (cfg.stage2.epochs, cfg.stage2.lr) == (2, 1e-5)
    assert cfg.salient_classes == ["person", 2] and cfg.vgg_weights == "w.pth"
    assert method_params("coconet", cfg.to_dict()) == cfg


def test_from_params_yaml_section():
    cfg = section({"coconet": {"tile_size": 512, "amp": False}}, "coconet", CoCoNetConfig)
    assert cfg.tile_size == 512 and cfg.amp is False


@pytest.mark.parametrize(
    ("params", "key"),
    [
        ({"patch_size": 60}, "patch_size"),
        ({"stage1": {"epochs": -1}}, "stage1"),
        ({"stage2": {"batch": 3}}, "stage2.batch"),
        ({"n_negatives": 0}, "n_negatives"),
        ({"tile_size": 100}, "tile_size"),
        ({"tile_overlap": 600}, "tile_overlap"),
        ({"device": "gpu"}, "device"),
        ({"c1": 0}, "c1"),
        ({"flips": "yes"}, "flips"),
        ({"learning_rate": 1e-3}, "learning_rate"),
    ],
)
def test_invalid_values_name_the_key(params: dict, key: str):
    with pytest.raises(ConfigError, match=key):
        method_params("coconet", params)


@pytest.mark.parametrize(
    ("params", "old", "new"),
    [
        ({"stage1": {"batch_size": 30}}, "stage1.batch_size", "patches_per_step"),
        ({"stage2": {"batch_size": 30}}, "stage2.batch_size", "patches_per_step"),
        ({"batch_size": 4}, "batch_size", "images_per_pass"),
    ],
)
def test_renamed_batch_keys_name_their_new_name(params: dict, old: str, new: str):
    with pytest.raises(ConfigError, match=rf"fusion\.coconet\.{old}: renamed to {new}"):
        method_params("coconet", params)
