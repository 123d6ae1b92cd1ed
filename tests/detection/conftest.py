"""A tiny prepared dataset with detection labels and one method's fused images."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from mmif.io import read_image, rgb_to_grey_uint8, write_image
from preparation.synthetic import SyntheticConfig, write_synthetic


def build_detection_data(
    root: Path, n_train: int = 8, n_val: int = 2, n_test: int = 4
) -> tuple[Path, Path]:
    """Write prepared/ (synthetic 64 x 48 scenes with labels) and fused/tiny/; returns (data_root, fused_root).

    Fused images alternate between grey (max of ir and visible luminance) and RGB (the visible
    image), so both kinds go through the detector's input path.
    """
    data_root, fused_root = root / "prepared", root / "fused" / "tiny"
    write_synthetic(
        SyntheticConfig(width=64, height=48, n_train=n_train, n_val=n_val, n_test=n_test),
        data_root,
        progress=False,
    )
    for split in ("train", "val", "test"):
        for i, vis_path in enumerate(sorted((data_root / split / "vis").glob("*.png"))):
            vis = read_image(vis_path)
            ir = read_image(data_root / split / "ir" / vis_path.name)
            grey_vis = rgb_to_grey_uint8(vis) if vis.ndim == 3 else vis
            fused = vis if i % 2 else np.maximum(ir, grey_vis)
            write_image(fused_root / split / vis_path.name, fused)
    return data_root, fused_root


@pytest.fixture(scope="session")
def det_data(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return build_detection_data(tmp_path_factory.mktemp("det_data"))
