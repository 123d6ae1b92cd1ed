import numpy as np
import pytest

from mmif.io import read_image
from mmif.layout import list_pairs
from preparation.prepare import prepare_dataset
from preparation.validate import DatasetError


def test_m3fd_voc_layout(m3fd_root, tmp_path):
    out = tmp_path / "out"
    m = prepare_dataset(
        "m3fd",
        out,
        root=m3fd_root,
        val_fraction=0.2,
        test_fraction=0.3,
        split_seed=1,
        salient_boxes="whole",  # the fixture's images are noise: check the box geometry
        progress=False,
    )
    assert m.splits == {"train": 5, "val": 2, "test": 3}
    assert m.det_classes == ["People", "Car", "Bus", "Lamp", "Motorcycle", "Truck"]
    assert m.extra["layout"]["layout"] == "m3fd" and m.extra["boxes_per_class"]["Lamp"] == 10
    pair = list_pairs(out, "train")[0]
    rows = [[float(v) for v in line.split()] for line in pair.labels.read_text().splitlines()]
    # People: VOC 11..30 x 6..15 in a 40 x 20 image -> edges 10..30 x 5..15
    assert np.allclose(rows[0], [0, 0.5, 0.5, 0.5, 0.5])
    assert rows[1][0] == 3
    sal = read_image(pair.salient) > 0
    assert sal.sum() == 20 * 10 and sal[5:15, 10:30].all()  # the Lamp box is not salient
    prepare_dataset(
        "m3fd",
        tmp_path / "again",
        root=m3fd_root,
        val_fraction=0.2,
        test_fraction=0.3,
        split_seed=1,
        progress=False,
    )
    assert [p.stem for p in list_pairs(tmp_path / "again", "test")] == [
        p.stem for p in list_pairs(out, "test")
    ]


def test_m3fd_class_list_override_from_file(m3fd_root, tmp_path):
    classes = tmp_path / "classes.txt"
    classes.write_text("lamp\npeople\n")
    m = prepare_dataset(
        "m3fd", tmp_path / "out", root=m3fd_root, det_classes=str(classes), progress=False
    )
    assert m.det_classes == ["lamp", "people"]
    assert m.salient_source == "warm part of the boxes of classes: people"
    first = sorted((tmp_path / "out").glob("*/labels/*.txt"))[0].read_text().split("\n")
    assert [line.split()[0] for line in first if line] == ["1", "0"]


def test_m3fd_unknown_class(m3fd_root, tmp_path, mk):
    (m3fd_root / "Annotation" / "00004.xml").write_text(mk.voc_xml((40, 20), [("Dog", 1, 1, 5, 5)]))
    with pytest.raises(DatasetError, match=r"00004.xml: object 1: class 'Dog' is not one of"):
        prepare_dataset("m3fd", tmp_path / "out", root=m3fd_root, progress=False)
    assert mk.leftovers(tmp_path / "out") == []
    m = prepare_dataset(
        "m3fd", tmp_path / "out", root=m3fd_root, unknown_classes="ignore", progress=False
    )
    assert m.extra["warnings"] == {"unknown-class": 1}


def test_m3fd_missing_annotation(m3fd_root, tmp_path, mk):
    (m3fd_root / "Annotation" / "00007.xml").unlink()
    with pytest.raises(DatasetError, match=r"no label file \(.xml\) for pair '00007'"):
        prepare_dataset("m3fd", tmp_path / "out", root=m3fd_root, progress=False)
    assert mk.leftovers(tmp_path / "out") == []


def test_tardal_layout(tmp_path, mk):
    root = tmp_path / "tardal"
    stems = [f"{i:05d}" for i in range(8)]
    mk.write_pairs(root / "ir", root / "vi", stems)
    (root / "labels").mkdir()
    for s in stems:
        (root / "labels" / f"{s}.txt").write_text("5 0.5 0.5 0.25 0.5\n")
    (root / "meta").mkdir()
    (root / "meta" / "train.txt").write_text("\n".join(stems[:6]) + "\n")
    (root / "meta" / "val.txt").write_text("\n".join(stems[6:]) + "\n")
    m = prepare_dataset("m3fd", tmp_path / "out", root=root, val_fraction=0.34, progress=False)
    assert m.splits == {"train": 4, "val": 2, "test": 2}  # TarDAL's val is our test
    assert {p.stem for p in list_pairs(tmp_path / "out", "test")} == set(stems[6:])
    assert m.extra["layout"]["layout"] == "tardal"
    assert m.extra["boxes_per_class"]["Truck"] == 8
