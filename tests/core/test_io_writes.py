"""The one atomic write (`mmif.io.atomic_path`, `save_torch`) and the one JSON writer."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from mmif.io import atomic_path, json_safe, save_torch, write_json


def test_write_json_writes_nan_and_infinities_as_null(tmp_path):
    path = tmp_path / "sub" / "m.json"
    data = {
        "nan": math.nan,
        "inf": -math.inf,
        "np": np.float32(0.5),
        "arr": np.array([1.0, np.nan]),
        "t": torch.tensor(2),
        "tuple": (1, Path("a/b")),
        3: "int key",
    }
    write_json(path, data)
    text = path.read_text()
    assert "NaN" not in text and "Infinity" not in text and text.endswith("\n")
    assert json.loads(text) == {
        "nan": None,
        "inf": None,
        "np": 0.5,
        "arr": [1.0, None],
        "t": 2,
        "tuple": [1, "a/b"],
        "3": "int key",
    }
    write_json(path, [1, 2], indent=None)
    assert path.read_text() == "[1, 2]\n"
    assert json_safe({"a": [math.nan]}) == {"a": [None]}


def test_json_safe_lists_of_plain_numbers_and_mixed_lists():
    """Lists of plain numbers take a shortcut; it must keep every rule of the recursive path."""
    plain = [1, 2.5, -math.inf, math.nan, True, None, "x"]
    assert json_safe(plain) == [1, 2.5, None, None, True, None, "x"]
    assert json_safe((0.5, math.inf)) == [0.5, None]
    # a numpy float is a float subclass: it goes through .item(), not the shortcut
    mixed = [np.float64(math.nan), np.float32(0.5), Path("a"), [math.nan, 1]]
    assert json_safe(mixed) == [None, 0.5, "a", [None, 1]]
    assert type(json_safe([np.float64(2.0)])[0]) is float


def test_atomic_path_leaves_the_old_file_when_the_write_fails(tmp_path):
    path = tmp_path / "w.pt"
    save_torch({"x": torch.ones(2)}, path)
    with pytest.raises(RuntimeError, match="killed"):
        with atomic_path(path) as tmp:
            tmp.write_bytes(b"half a checkpoint")
            raise RuntimeError("killed")
    assert torch.equal(torch.load(path, weights_only=True)["x"], torch.ones(2))
    assert [p.name for p in tmp_path.iterdir()] == ["w.pt"]  # no temporary left behind
