"""Fixtures shared by every test folder: offline settings, the vendored fixtures, the team's real
data in ../shared (skipped when absent), one-thread torch for tiny tensors, tiny synthetic
datasets (with fused images for the task tests)."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
#: vendored on every clone (tests/fixtures/SOURCE.md says where each file comes from)
FIXTURES = REPO / "tests" / "fixtures"
SHARED = (REPO / ".." / "shared").resolve()
SHARED_DATA = SHARED / "data"

# offline, project-local settings for every test process (also set by scripts/run_tests.sh)
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("YOLO_OFFLINE", "1")
os.environ.setdefault("DVC_NO_ANALYTICS", "1")
os.environ.setdefault("ULTRALYTICS_SAFE_LOAD", "1")
os.environ.setdefault("YOLO_CONFIG_DIR", str(REPO / ".cache" / "ultralytics"))
os.environ.setdefault("MPLCONFIGDIR", str(REPO / ".cache" / "matplotlib"))


def shared_path(*parts: str) -> Path:
    """A path under ../shared (e.g. "data", "tno37"), or skip the test with the reason."""
    path = SHARED.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"real data not available: {path} (the team's ../shared is absent here)")
    return path


@pytest.fixture
def shared() -> Callable[..., Path]:
    """A function giving a path under ../shared, skipping the test when it is absent."""
    return shared_path


@pytest.fixture
def shared_data() -> Callable[..., Path]:
    """A function giving a path under ../shared/data, skipping the test when it is absent."""
    return lambda *parts: shared_path("data", *parts)


def load_script(relpath: str):
    """Import a repository script that is not a package module (scripts/, benchmarks/) by path."""
    import importlib.util

    path = REPO / relpath
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def fixtures_dir() -> Path:
    """tests/fixtures: the vendored metric reference table and TNO pairs (always present)."""
    return FIXTURES


@pytest.fixture(scope="module")
def single_thread() -> Iterator[None]:
    """torch on one thread for a module, restored after it.

    Tiny tensors gain nothing from intra-op threads, and on a shared, busy CPU the
    synchronisation makes them tens of times slower. Use with
    `pytestmark = pytest.mark.usefixtures("single_thread")`.
    """
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def build_fused_dataset(
    root: Path,
    method: str,
    n_train: int = 8,
    n_val: int = 2,
    n_test: int = 4,
    width: int = 64,
    height: int = 48,
) -> tuple[Path, Path]:
    """root/prepared (synthetic scenes with boxes and masks) and root/fused/<method>; returns
    (data_root, fused_root).

    Fused images alternate between grey (max of ir and visible luminance) and RGB (the visible
    image), so both kinds go through the task models' input paths.
    """
    from mmif.io import read_image, rgb_to_grey_uint8, write_image
    from preparation.synthetic import SyntheticConfig, write_synthetic

    data_root, fused_root = root / "prepared", root / "fused" / method
    cfg = SyntheticConfig(width=width, height=height, n_train=n_train, n_val=n_val, n_test=n_test)
    write_synthetic(cfg, data_root, progress=False)
    for split in ("train", "val", "test"):
        for i, vis_path in enumerate(sorted((data_root / split / "vis").glob("*.png"))):
            vis = read_image(vis_path)
            ir = read_image(data_root / split / "ir" / vis_path.name)
            fused = vis if i % 2 else np.maximum(ir, rgb_to_grey_uint8(vis))
            write_image(fused_root / split / vis_path.name, fused)
    return data_root, fused_root


@pytest.fixture(scope="session")
def det_data(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """Detection tests: 8 train, 2 val, 4 test pairs of 64 x 48 and fused/tiny/."""
    return build_fused_dataset(tmp_path_factory.mktemp("det_data"), "tiny")


@pytest.fixture(scope="session")
def tiny_dataset(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """Segmentation tests: 8 train, 2 val, 3 test pairs of 64 x 48 and fused/max/."""
    return build_fused_dataset(tmp_path_factory.mktemp("seg_data"), "max", n_test=3)


@pytest.fixture(scope="session")
def tiny_synthetic(tmp_path_factory) -> Path:
    """A prepared synthetic dataset of 64 x 48 images: 6 train, 2 val, 4 test pairs."""
    from preparation.synthetic import SyntheticConfig, write_synthetic

    out = tmp_path_factory.mktemp("synthetic") / "prepared"
    write_synthetic(
        SyntheticConfig(width=64, height=48, n_train=6, n_val=2, n_test=4), out, progress=False
    )
    return out
