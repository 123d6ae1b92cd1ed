"""Shared test fixtures: paths to the team's real data (skipped when absent) and tiny datasets."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
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
    """A path under ../shared/data, or skip the test with the reason."""
    path = SHARED_DATA.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"real data not available: {path} (the team's ../shared/data is absent here)")
    return path


@pytest.fixture(scope="session")
def tiny_synthetic(tmp_path_factory) -> Path:
    """A prepared synthetic dataset of 64 x 48 images: 6 train, 2 val, 4 test pairs."""
    from preparation.synthetic import SyntheticConfig, write_synthetic

    out = tmp_path_factory.mktemp("synthetic") / "prepared"
    write_synthetic(
        SyntheticConfig(width=64, height=48, n_train=6, n_val=2, n_test=4), out, progress=False
    )
    return out
