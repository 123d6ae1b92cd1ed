"""Bad inputs: each case checks the message (file and fix) and that no output was left."""

import numpy as np
import pytest
from PIL import Image

from mmif.io import read_image
from mmif.layout import Manifest, list_pairs
from preparation.prepare import prepare_dataset
from preparation.validate import DatasetError


def _prepare(root, out, name="folders", **kw):
    return prepare_dataset(
        name, out, root=root, progress=False, test_fraction=1.0, val_fraction=0.0, **kw
    )


def _fails(root, out, match, name="folders", **kw):
    with pytest.raises(DatasetError, match=match):
        _prepare(root, out, name, **kw)


def test_missing_partner(folders_root, tmp_path, mk):
    (folders_root / "vis" / "p03.png").unlink()
    out = tmp_path / "out"
    _fails(
        folders_root,
        out,
        r"ir/p03.png: no visible partner named p03.\* in .*vis; add it or remove the infrared image",
    )
    assert mk.leftovers(out) == []


def test_size_mismatch_is_an_error_unless_resizing_is_asked(folders_root, tmp_path, mk):
    mk.save(folders_root / "vis" / "p02.png", mk.image(20, 30, colour=True))
    out = tmp_path / "out"
    _fails(
        folders_root,
        out,
        r"vis/p02.png: size 30x20 differs from its infrared partner p02.png \(32x24\).*resize_mismatched: true",
    )
    assert mk.leftovers(out) == []
    m = _prepare(folders_root, out, resize_mismatched=True)
    assert read_image(out / "test" / "vis" / "p02.png").shape == (24, 32, 3)
    assert m.extra["warnings"] == {"resized": 1}


@pytest.mark.parametrize("damage", ["truncated", "empty", "not-an-image"])
def test_unreadable_image(folders_root, tmp_path, mk, damage):
    path = folders_root / "ir" / "p01.png"
    data = path.read_bytes()
    path.write_bytes(
        {"truncated": data[: len(data) // 2], "empty": b"", "not-an-image": b"hello world" * 10}[
            damage
        ]
    )
    out = tmp_path / "out"
    _fails(
        folders_root,
        out,
        r"ir/p01.png: .*(truncated|not a readable image).*re-export or remove the file",
    )
    assert mk.leftovers(out) == []


def test_16bit_infrared_is_scaled_by_min_max_with_a_warning(folders_root, tmp_path, caplog):
    raw = np.full((24, 32), 1000, np.uint16)
    raw[0, :] = 3000
    raw[1, :] = 2000
    Image.fromarray(raw).save(folders_root / "ir" / "p00.png")
    m = _prepare(folders_root, tmp_path / "out")
    ir = read_image(tmp_path / "out" / "test" / "ir" / "p00.png")
    # rule: (v - min) * 255 / (max - min), rounded
    assert ir.dtype == np.uint8 and ir[0, 0] == 255 and ir[1, 0] == 128 and ir[5, 5] == 0
    assert m.extra["warnings"] == {"16-bit": 1}
    assert "scaled to 8 bits" in caplog.text


def test_rgba_and_palette_images_are_converted(folders_root, tmp_path, mk):
    rgba = mk.image(24, 32, colour=True)
    rgba = np.dstack([rgba, np.full((24, 32), 128, np.uint8)])
    Image.fromarray(rgba, "RGBA").save(folders_root / "vis" / "p00.png")
    Image.fromarray(mk.image(24, 32)).convert("P").save(folders_root / "ir" / "p01.png")
    m = _prepare(folders_root, tmp_path / "out")
    vis = read_image(tmp_path / "out" / "test" / "vis" / "p00.png")
    assert vis.shape == (24, 32, 3) and np.array_equal(vis, rgba[..., :3])
    assert read_image(tmp_path / "out" / "test" / "ir" / "p01.png").ndim == 2
    assert m.extra["warnings"] == {"converted": 2}


def test_colour_infrared_is_reduced_to_luminance(folders_root, tmp_path, mk):
    mk.save(folders_root / "ir" / "p00.png", mk.image(24, 32, colour=True))
    m = _prepare(folders_root, tmp_path / "out")
    assert read_image(tmp_path / "out" / "test" / "ir" / "p00.png").ndim == 2
    assert m.extra["warnings"] == {"colour-infrared": 1}


def test_non_image_files_are_ignored_with_a_warning(folders_root, tmp_path, caplog):
    (folders_root / "ir" / "readme.txt").write_text("notes")
    (folders_root / "vis" / "Thumbs.db").write_bytes(b"\0")
    (folders_root / "vis" / ".DS_Store").write_bytes(b"\0")  # hidden: skipped silently
    (folders_root / "ir" / "sub").mkdir()
    m = _prepare(folders_root, tmp_path / "out")
    assert m.splits == {"test": 6}
    assert m.extra["warnings"] == {"non-image": 2}
    assert "ignored 1 non-image file(s) (readme.txt)" in caplog.text


def test_two_images_with_one_stem(folders_root, tmp_path, mk):
    mk.save(folders_root / "ir" / "p00.jpg", mk.image(24, 32))
    out = tmp_path / "out"
    _fails(folders_root, out, r"ir/p00.png: another image has the stem 'p00' \(p00.jpg\).*keep one")
    assert mk.leftovers(out) == []


def test_empty_dataset(tmp_path, mk):
    (tmp_path / "d" / "ir").mkdir(parents=True)
    (tmp_path / "d" / "vis").mkdir()
    out = tmp_path / "out"
    _fails(tmp_path / "d", out, "no image pairs found")
    assert mk.leftovers(out) == []


def test_missing_root_and_unknown_layout(tmp_path, mk):
    out = tmp_path / "out"
    _fails(tmp_path / "nowhere", out, r"nowhere: folders folder not found; check dataset.root")
    (tmp_path / "odd" / "a").mkdir(parents=True)
    _fails(
        tmp_path / "odd",
        out,
        r"odd: expected an infrared folder .*set dataset.ir_dir and dataset.vis_dir",
    )
    assert mk.leftovers(out) == []


# --- labels and masks (MSRS layout) --------------------------------------------------------------


def _det(msrs_root):
    return msrs_root.parent / "MSRS-detection-label"


def test_malformed_label_line(msrs_root, tmp_path, mk):
    (_det(msrs_root) / "fusion" / "test" / "00006N.txt").write_text(
        "0 0.5 0.5 0.1 0.1\n2 0.5 0.5\n"
    )
    out = tmp_path / "out"
    _fails(
        msrs_root,
        out,
        r"00006N.txt: line 2: expected 5 values",
        name="msrs",
        det_labels=_det(msrs_root),
    )
    assert mk.leftovers(out) == []


def test_label_class_out_of_range(msrs_root, tmp_path, mk):
    (_det(msrs_root) / "fusion" / "train" / "00002D.txt").write_text("3 0.5 0.5 0.1 0.1\n")
    out = tmp_path / "out"
    _fails(
        msrs_root,
        out,
        r"00002D.txt: box 1: class id 3 outside 0..2; .*dataset.det_classes",
        name="msrs",
        det_labels=_det(msrs_root),
    )
    assert mk.leftovers(out) == []


def test_missing_label_file(msrs_root, tmp_path, mk):
    (_det(msrs_root) / "fusion" / "test" / "00005D.txt").unlink()
    out = tmp_path / "out"
    _fails(
        msrs_root,
        out,
        r"no label file \(.txt\) for pair '00005D'.*add an empty file",
        name="msrs",
        det_labels=_det(msrs_root),
    )
    assert mk.leftovers(out) == []


def test_box_outside_is_clipped_with_a_warning(msrs_root, tmp_path):
    (_det(msrs_root) / "fusion" / "test" / "00005D.txt").write_text(
        "0 0.95 0.5 0.2 0.2\n1 1.5 0.5 0.2 0.2\n"
    )
    m = prepare_dataset(
        "msrs", tmp_path / "out", root=msrs_root, det_labels=_det(msrs_root), progress=False
    )
    rows = (tmp_path / "out" / "test" / "labels" / "00005D.txt").read_text().split()
    assert np.allclose([float(v) for v in rows], [0, 0.925, 0.5, 0.15, 0.2])
    assert m.extra["warnings"] == {"box-clipped": 1, "box-outside": 1}


def test_mask_id_out_of_range(msrs_root, tmp_path, mk):
    mk.save(
        msrs_root / "test" / "Segmentation_labels" / "00006N.png", np.full((24, 32), 9, np.uint8)
    )
    out = tmp_path / "out"
    _fails(
        msrs_root,
        out,
        r"00006N.png: class id\(s\) \[9\] outside the 9 segmentation classes",
        name="msrs",
    )
    assert mk.leftovers(out) == []


def test_mask_size_mismatch(msrs_root, tmp_path, mk):
    mk.save(msrs_root / "test" / "Segmentation_labels" / "00006N.png", np.zeros((12, 16), np.uint8))
    out = tmp_path / "out"
    _fails(
        msrs_root,
        out,
        r"00006N.png: mask size 16x12 differs from its image pair \(32x24\)",
        name="msrs",
    )
    assert mk.leftovers(out) == []


# --- check mode -----------------------------------------------------------------------------------


def test_check_mode_reports_every_problem_and_writes_nothing(folders_root, tmp_path, mk):
    (folders_root / "vis" / "p05.png").unlink()  # missing partner
    (folders_root / "ir" / "p01.png").write_bytes(b"")  # unreadable
    mk.save(folders_root / "vis" / "p02.png", mk.image(20, 30, colour=True))  # size mismatch
    (folders_root / "ir" / "notes.txt").write_text("x")  # non-image (warning)
    raw = np.arange(24 * 32, dtype=np.uint16).reshape(24, 32) * 50
    Image.fromarray(raw).save(folders_root / "ir" / "p03.png")  # 16-bit (warning)
    out = tmp_path / "out"
    problems = prepare_dataset("folders", out, root=folders_root, check=True, progress=False)
    kinds = sorted((p.severity, p.kind) for p in problems)
    assert kinds == [
        ("error", "missing-partner"),
        ("error", "size-mismatch"),
        ("error", "unreadable"),
        ("warning", "16-bit"),
        ("warning", "non-image"),
    ]
    assert all(str(folders_root) in p.path for p in problems)
    assert str(problems[0]).startswith(("error: ", "warning: "))
    assert mk.leftovers(out) == []


def test_check_mode_on_a_clean_dataset(folders_root, tmp_path, mk):
    assert (
        prepare_dataset("folders", tmp_path / "out", root=folders_root, check=True, progress=False)
        == []
    )
    assert mk.leftovers(tmp_path / "out") == []


def test_check_mode_reports_layout_errors(tmp_path):
    problems = prepare_dataset("msrs", None, root=tmp_path / "nowhere", check=True, progress=False)
    assert (
        len(problems) == 1
        and problems[0].kind == "layout"
        and "MSRS folder not found" in problems[0].message
    )


def test_prepared_output_is_readable_by_list_pairs(folders_root, tmp_path):
    _prepare(folders_root, tmp_path / "out")
    assert [p.stem for p in list_pairs(tmp_path / "out", "test")] == [f"p{i:02d}" for i in range(6)]
    assert Manifest.load(tmp_path / "out").extra["adapter"] == "folders"
