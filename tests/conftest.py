"""Fixtures shared by every test folder: offline settings, the vendored fixtures, the team's real
data in ../shared (skipped when absent), one-thread torch for tiny tensors, tiny datasets."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path

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


@pytest.fixture(scope="session")
def tiny_synthetic(tmp_path_factory) -> Path:
    """A prepared synthetic dataset of 64 x 48 images: 6 train, 2 val, 4 test pairs."""
    from preparation.synthetic import SyntheticConfig, write_synthetic

    out = tmp_path_factory.mktemp("synthetic") / "prepared"
    write_synthetic(
        SyntheticConfig(width=64, height=48, n_train=6, n_val=2, n_test=4), out, progress=False
    )
    return out
