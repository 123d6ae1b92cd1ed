import numpy as np
import pytest

from mmif.io import read_image
from mmif.layout import list_pairs
from preparation.adapters.fmb import SEG_CLASSES
from preparation.prepare import prepare_dataset
from preparation.validate import DatasetError


def test_fmb_layout_palette_masks_keep_their_ids(fmb_root, tmp_path):
    out = tmp_path / "out"
    m = prepare_dataset("fmb", out, root=fmb_root, val_fraction=0.25, progress=False)
    assert m.splits == {"train": 3, "val": 1, "test": 2}
    assert m.seg_classes == SEG_CLASSES and len(SEG_CLASSES) == 15
    assert not m.has_det_labels and m.has_seg_masks
    assert m.salient_source == "segmentation classes: person, car, truck, bus, motorcycle"
    pair = list_pairs(out, "test")[0]
    mask = read_image(pair.mask)
    assert set(np.unique(mask).tolist()) == {0, 7, 8, 9}
    assert np.array_equal(read_image(pair.salient) > 0, np.isin(mask, [8, 9]))


def test_fmb_class_list_override(fmb_root, tmp_path):
    names = [f"c{i}" for i in range(10)]
    m = prepare_dataset(
        "fmb",
        tmp_path / "out",
        root=fmb_root,
        seg_classes=names,
        salient_classes=["c9"],
        progress=False,
    )
    assert m.seg_classes == names and m.salient_source == "segmentation classes: c9"
    assert m.extra["layout"]["seg_classes_verified"] is True


def test_fmb_ids_beyond_the_class_list(fmb_root, tmp_path, mk):
    with pytest.raises(
        DatasetError,
        match=r"class id\(s\) \[9\] outside the 9 segmentation classes.*dataset.seg_classes",
    ):
        prepare_dataset(
            "fmb",
            tmp_path / "out",
            root=fmb_root,
            seg_classes=[f"c{i}" for i in range(9)],
            progress=False,
        )
    assert mk.leftovers(tmp_path / "out") == []
