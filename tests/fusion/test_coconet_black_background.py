"""Medical-like pairs: where both sources are black, a briefly trained CoCoNet stays black.

Synthetic stand-ins for MRI-PET slices: a textured "head" disc on a black background in the
first source, a smooth hot region inside the same disc in the second. An untrained network
outputs the middle of its tanh range (grey) there; a short step budget with the medical
profile's loss balance (README "Medical image fusion") must bring it below 5 of 255.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from fusion.coconet.train import train_coconet
from fusion.registry import create_method, method_params
from mmif.io import write_image
from mmif.layout import Manifest

SIZE = 64
BLACK = 0.02  # both sources below 2% of full range: "background"
LIMIT = 5 / 255  # the fused image's mean there must stay below this


def medical_like_pair(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """(mri, pet) uint8 H x W: a disc of texture / a warm blob inside it, black elsewhere."""
    yy, xx = np.mgrid[:SIZE, :SIZE].astype(np.float32)
    cy, cx = rng.uniform(26, 38, 2)
    r = rng.uniform(17, 22)
    head = (yy - cy) ** 2 + (xx - cx) ** 2 < r**2
    texture = 0.45 + 0.25 * np.sin(xx / rng.uniform(2, 4)) * np.cos(yy / rng.uniform(2, 4))
    mri = np.where(head, texture + 0.1 * rng.standard_normal((SIZE, SIZE)), 0.0)
    by, bx = cy + rng.uniform(-6, 6), cx + rng.uniform(-6, 6)
    blob = np.exp(-((yy - by) ** 2 + (xx - bx) ** 2) / (2 * rng.uniform(5, 8) ** 2))
    pet = np.where(head, 0.15 + 0.8 * blob, 0.0)
    to8 = lambda a: (np.clip(a, 0, 1) * 255).round().astype(np.uint8)  # noqa: E731
    return to8(mri), to8(pet)


@pytest.fixture(scope="module")
def medical_like(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("medical_like") / "prepared"
    rng = np.random.default_rng(5)
    for i in range(6):
        mri, pet = medical_like_pair(rng)
        write_image(root / "train" / "ir" / f"s{i}.png", mri)
        write_image(root / "train" / "vis" / f"s{i}.png", pet)
    Manifest(name="medical-like", provenance="tests", splits={"train": 6}).save(root)
    return root


def background_mean(method, rng: np.random.Generator) -> float:
    """Mean fused value (0..1) where both sources are black, over unseen medical-like pairs."""
    pairs = [medical_like_pair(rng) for _ in range(3)]
    ir = torch.from_numpy(np.stack([a for a, _ in pairs])[:, None] / 255.0).float()
    vis = torch.from_numpy(np.stack([b for _, b in pairs])[:, None] / 255.0).float()
    fused = method.fuse(ir, vis)
    black = (ir < BLACK) & (vis < BLACK)
    assert black.float().mean() > 0.3  # the case really has a large black background
    return float(fused[black].mean())


@pytest.mark.slow
@pytest.mark.usefixtures("single_thread")  # tiny tensors (tests/conftest.py)
def test_short_training_keeps_black_backgrounds_black(medical_like: Path, tmp_path: Path):
    cfg = method_params(
        "coconet",
        {
            # the medical profile's balance and step budget, scaled down to CPU seconds
            "stage1": {"steps": 60, "patches_per_step": 4, "lr": 1e-3},
            "stage2": {"steps": 0},
            "ssim_weight": 2.0,
            "patch_size": 32,
            "patches_per_image": 2,
            "bn_recalibration": 24,
            "device": "cpu",
        },
    )
    untrained = create_method("coconet", cfg.to_dict(), weights=None, device="cpu")
    grey = background_mean(untrained, np.random.default_rng(9))
    assert grey > 3 * LIMIT  # untrained: the tanh midpoint, far from black

    weights = train_coconet(medical_like, tmp_path / "out", cfg, progress=False)
    trained = create_method("coconet", {}, weights=weights, device="cpu")
    assert background_mean(trained, np.random.default_rng(9)) < LIMIT
