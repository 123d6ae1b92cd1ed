"""Which splits a folder of published fused images covers (mmif.external.check_method): the test
split must be complete, train and val are used only when complete, and every refusal names the
folder, an example stem and the fix."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from mmif.external import PreparedPairs, RegistrationError, check_method, covered_splits
from mmif.io import write_image

W, H = 20, 12
STEMS = {"train": ["t1", "t2", "t3"], "val": ["v1"], "test": ["x1", "x2"]}


@pytest.fixture
def pairs() -> PreparedPairs:
    sizes = {(split, s): (W, H) for split, stems in STEMS.items() for s in stems}
    return PreparedPairs(name="tiny", stems=STEMS, sizes=sizes)


def _write(folder: Path, stems: list[str], size: tuple[int, int] = (W, H)) -> None:
    for stem in stems:
        write_image(folder / f"{stem}.png", np.full((size[1], size[0]), 7, np.uint8))


def test_test_images_only_cover_the_test_split(tmp_path, pairs):
    _write(tmp_path / "m", STEMS["test"])
    check = check_method(tmp_path / "m", pairs, name="m")
    assert check.usable and check.layout == "flat" and check.colour == "grey"
    assert check.splits == ["test"]
    assert {s: c.text() for s, c in check.coverage.items()} == {
        "train": "0/3", "val": "0/1", "test": "2/2",
    }  # fmt: skip
    assert covered_splits(check) == {
        "test": {s: tmp_path / "m" / f"{s}.png" for s in STEMS["test"]}
    }


def test_every_split_complete_in_one_flat_folder(tmp_path, pairs):
    _write(tmp_path / "m", [s for stems in STEMS.values() for s in stems])
    check = check_method(tmp_path / "m", pairs)
    assert check.usable and check.splits == ["train", "val", "test"]


def test_a_partial_train_split_is_left_out_with_a_note(tmp_path, pairs):
    _write(tmp_path / "m" / "test", STEMS["test"])
    _write(tmp_path / "m" / "train", STEMS["train"][:2])
    check = check_method(tmp_path / "m", pairs)
    assert check.usable and check.layout == "splits"
    assert check.splits == ["test"]
    assert any("train: 2/3 pairs, not used" in note for note in check.notes), check.notes


def test_a_missing_test_image_refuses_the_method_naming_it(tmp_path, pairs):
    _write(tmp_path / "m", [*STEMS["train"], *STEMS["val"], "x1"])  # train and val complete
    check = check_method(tmp_path / "m", pairs)
    assert not check.usable
    (problem,) = check.problems
    assert str(tmp_path / "m") in problem
    assert "covers 1/2 test pairs" in problem and "'x2'" in problem
    assert "add a fused image for every test pair" in problem
    with pytest.raises(RegistrationError, match="covers 1/2 test pairs"):
        covered_splits(check)


def test_images_named_like_no_pair_are_refused_with_examples(tmp_path, pairs):
    _write(tmp_path / "m", ["fused_001", "fused_002"])
    (problem,) = check_method(tmp_path / "m", pairs).problems
    assert "none of its 2 images is named like a prepared pair" in problem
    assert "'fused_001'" in problem and "'x1'" in problem


def test_a_test_image_of_the_wrong_size_is_refused(tmp_path, pairs):
    _write(tmp_path / "m", ["x1"])
    _write(tmp_path / "m", ["x2"], size=(W + 1, H))
    (problem,) = check_method(tmp_path / "m", pairs).problems
    assert f"x2.png is {W + 1}x{H} but the pair 'x2' is {W}x{H}" in problem


def test_shared_stems_let_a_flat_folder_serve_the_test_split_only(tmp_path):
    stems = {"train": ["a", "b"], "test": ["a", "b"]}  # e.g. a dataset split by sequence
    sizes = {(split, s): (W, H) for split, ss in stems.items() for s in ss}
    shared = PreparedPairs(name="shared", stems=stems, sizes=sizes)
    _write(tmp_path / "m", ["a", "b"])
    check = check_method(tmp_path / "m", shared)
    assert check.usable and check.splits == ["test"]
    assert check.coverage["train"].matched == 0
    assert any("share stems" in note for note in check.notes)


def test_an_empty_or_absent_folder_is_refused(tmp_path, pairs):
    (tmp_path / "empty").mkdir()
    assert "no images (an empty folder)" in check_method(tmp_path / "empty", pairs).problems[0]
    assert "nothing where a folder" in check_method(tmp_path / "absent", pairs).problems[0]
