import numpy as np
import pytest

from mmif.io import read_image
from mmif.layout import list_pairs
from preparation.prepare import prepare_dataset
from preparation.validate import DatasetError


def _rows(path):
    return [
        [float(v) for v in line.split()] for line in path.read_text().splitlines() if line.strip()
    ]


def test_real_msrs_subset_with_detection_labels(shared_data, tmp_path):
    root = shared_data("msrs_det200")
    out = tmp_path / "out"
    # `test/det_labels/` next to ir/ and vi/ is found without --det-labels
    m = prepare_dataset("msrs", out, root=root, max_pairs_per_split=10, progress=False)
    assert m.splits == {"test": 10}
    assert m.extra["day_night"] == {"test": {"day": 5, "night": 5}}
    assert (
        m.det_classes == ["person", "bicycle", "car"] and m.has_det_labels and not m.has_seg_masks
    )
    assert m.image_sizes == {"640x480": 10} and m.colour_visible
    assert m.salient_source == "warm part of the boxes of classes: person, car"
    for pair in list_pairs(out, "test"):
        assert read_image(pair.ir).shape == (480, 640)
        assert read_image(pair.vis).shape == (480, 640, 3)
        src = _rows(root / "test" / "det_labels" / f"{pair.stem}.txt")
        got = _rows(pair.labels)
        assert len(got) == len(src)
        assert np.allclose(got, src, atol=1e-3)  # at most a half-pixel clip
        sal = read_image(pair.salient)
        assert (sal > 0).any() == any(r[0] in (0, 2) for r in src)


def test_real_msrs_explicit_det_labels_and_resplit(shared_data, tmp_path):
    root = shared_data("msrs_det200")
    m = prepare_dataset(
        "msrs",
        tmp_path / "out",
        root=root,
        det_labels=root / "test" / "det_labels_ir",
        max_pairs_per_split=20,
        resplit=True,
        val_fraction=0.2,
        test_fraction=0.2,
        progress=False,
    )
    assert m.splits == {"train": 12, "val": 4, "test": 4}
    assert all(
        v == {"day": v["day"], "night": v["day"]} for v in m.extra["day_night"].values()
    )  # stratified
    stem = list_pairs(tmp_path / "out", "val")[0].stem
    assert len(_rows(tmp_path / "out" / "val" / "labels" / f"{stem}.txt")) == len(
        _rows(root / "test" / "det_labels_ir" / f"{stem}.txt")
    )


def test_msrs_layout_with_masks_and_release_det_labels(msrs_root, tmp_path):
    det = msrs_root.parent / "MSRS-detection-label"
    (det / "classes.txt").write_text("pedestrian\ncycle\nvehicle\n")
    m = prepare_dataset(
        "msrs", tmp_path / "out", root=msrs_root, det_labels=det, val_fraction=0.5, progress=False
    )
    assert m.splits == {"train": 2, "val": 2, "test": 2}
    assert m.extra["day_night"]["val"] == {"day": 1, "night": 1}
    assert m.det_classes == ["pedestrian", "cycle", "vehicle"]  # from the release's classes.txt
    assert m.seg_classes[:3] == ["unlabelled", "car", "person"] and len(m.seg_classes) == 9
    assert m.has_seg_masks and m.has_det_labels
    assert m.salient_source == "segmentation classes: car, person"  # masks win over boxes
    pair = list_pairs(tmp_path / "out", "test")[0]
    mask, sal = read_image(pair.mask), read_image(pair.salient)
    assert np.array_equal(sal > 0, np.isin(mask, [1, 2]))  # car and person, not curve
    assert m.extra["layout"]["det_labels"].endswith("fusion/test")


def test_msrs_colour_masks_are_mapped_through_the_palette(msrs_root, tmp_path, mk):
    ids = np.zeros((24, 32), np.uint8)
    ids[5:10, 5:10] = 2
    ids[12:20, 0:30] = 8
    palette = np.array(
        [
            (0, 0, 0),
            (64, 0, 128),
            (64, 64, 0),
            (0, 128, 192),
            (0, 0, 192),
            (128, 128, 0),
            (64, 64, 128),
            (192, 128, 128),
            (192, 64, 0),
        ],
        np.uint8,
    )
    mk.save(msrs_root / "test" / "Segmentation_labels" / "00005D.png", palette[ids])
    prepare_dataset("msrs", tmp_path / "out", root=msrs_root, progress=False)
    assert np.array_equal(read_image(tmp_path / "out" / "test" / "masks" / "00005D.png"), ids)


def test_msrs_test_only_folder_and_flat_label_folder(msrs_root, tmp_path, mk):
    import shutil

    shutil.rmtree(msrs_root / "train")
    flat = tmp_path / "flat"
    flat.mkdir()
    for p in (msrs_root.parent / "MSRS-detection-label" / "fusion" / "test").iterdir():
        shutil.copy(p, flat / p.name)
    (flat / "classes.txt").write_text("person\nbicycle\ncar\n")  # not read as a label file
    m = prepare_dataset("msrs", tmp_path / "out", root=msrs_root, det_labels=flat, progress=False)
    assert m.splits == {"test": 2} and m.extra["split_rule"] == "upstream test"


def test_msrs_wrong_layout(tmp_path, mk):
    (tmp_path / "m" / "test" / "ir").mkdir(parents=True)
    with pytest.raises(DatasetError, match=r"test: expected ir/ and vi/ folders inside"):
        prepare_dataset("msrs", tmp_path / "out", root=tmp_path / "m", progress=False)
    (tmp_path / "n" / "other").mkdir(parents=True)
    with pytest.raises(DatasetError, match="no MSRS layout found"):
        prepare_dataset("msrs", tmp_path / "out", root=tmp_path / "n", progress=False)
    assert mk.leftovers(tmp_path / "out") == []
