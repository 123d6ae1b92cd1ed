"""A tiny prepared dataset with masks and one method's fused images, built from synthetic scenes."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest

from mmif.io import rgb_to_grey_uint8, write_image
from mmif.layout import Manifest
from preparation.synthetic import SEG_CLASSES, SyntheticConfig, generate


def build_dataset(
    root: Path, width: int = 64, height: int = 48, n_train: int = 8, n_val: int = 2, n_test: int = 3
) -> tuple[Path, Path]:
    """Write data/prepared and data/fused/<method> under root; returns (data_root, fused_root).

    Fused images alternate between grey (max of ir and visible luminance) and RGB (the visible
    image), so both input kinds go through the dataset.
    """
    data_root, fused_root = root / "prepared", root / "fused" / "max"
    cfg = SyntheticConfig(width=width, height=height, n_train=n_train, n_val=n_val, n_test=n_test)
    counts: dict[str, int] = {}
    for i, scene in enumerate(generate(cfg)):
        d = data_root / scene.split
        write_image(d / "ir" / f"{scene.stem}.png", scene.ir)
        write_image(d / "vis" / f"{scene.stem}.png", scene.vis)
        write_image(d / "masks" / f"{scene.stem}.png", scene.mask)
        fused = scene.vis if i % 2 else np.maximum(scene.ir, rgb_to_grey_uint8(scene.vis))
        write_image(fused_root / scene.split / f"{scene.stem}.png", fused)
        counts[scene.split] = counts.get(scene.split, 0) + 1
    Manifest(
        name="tiny-synthetic",
        provenance="tests",
        splits=counts,
        seg_classes=list(SEG_CLASSES),
        has_seg_masks=True,
        colour_visible=True,
    ).save(data_root)
    return data_root, fused_root


@pytest.fixture(scope="session")
def tiny_dataset(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return build_dataset(tmp_path_factory.mktemp("seg_data"))


@pytest.fixture(autouse=True)
def _quiet_logs(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="segmentation")


@pytest.fixture(autouse=True)
def _one_thread(single_thread: None) -> None:
    """Every segmentation test runs torch on one thread (tests/conftest.py `single_thread`)."""
