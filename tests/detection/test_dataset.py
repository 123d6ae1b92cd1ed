"""The ultralytics work folder: links, labels outside the data folders, three-channel input."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import pytest
import yaml

from detection.dataset import DatasetError, build_yolo_dataset
from mmif.io import read_image
from mmif.labels import read_yolo_file
from mmif.layout import Manifest


def _copy_data(det_data: tuple[Path, Path], tmp_path: Path) -> tuple[Path, Path]:
    data_root, fused_root = det_data
    shutil.copytree(data_root, tmp_path / "prepared")
    shutil.copytree(fused_root, tmp_path / "fused" / fused_root.name)
    return tmp_path / "prepared", tmp_path / "fused" / fused_root.name


def test_links_point_at_fused_images_and_shared_labels(det_data, tmp_path) -> None:
    data_root, fused_root = det_data
    ds = build_yolo_dataset(fused_root, data_root, tmp_path / "work")
    assert ds.linked
    assert ds.class_names == Manifest.load(data_root).det_classes
    for split in ("train", "val", "test"):
        stems = sorted(p.stem for p in (fused_root / split).glob("*.png"))
        assert ds.stems[split] == stems
        for stem in stems:
            image = ds.image_path(split, stem)
            label = ds.label_path(split, stem)
            assert (
                image.is_symlink()
                and image.resolve() == (fused_root / split / f"{stem}.png").resolve()
            )
            assert (
                label.is_symlink()
                and label.resolve() == (data_root / split / "labels" / f"{stem}.txt").resolve()
            )
    description = yaml.safe_load(ds.yaml_path.read_text())
    assert Path(description["path"]) == ds.root
    assert description["channels"] == 3
    assert description["names"] == dict(enumerate(ds.class_names))
    assert (ds.root / description["test"]).is_dir()


def test_work_folder_inside_the_data_is_refused(det_data) -> None:
    data_root, fused_root = det_data
    with pytest.raises(DatasetError, match="outside"):
        build_yolo_dataset(fused_root, data_root, data_root / "yolo")
    with pytest.raises(DatasetError, match="outside"):
        build_yolo_dataset(fused_root, data_root, fused_root / "yolo")


def test_ultralytics_reads_grey_and_colour_as_three_channels(det_data, tmp_path) -> None:
    from detection.offline import import_ultralytics

    import_ultralytics()
    from ultralytics.utils.patches import imread

    data_root, fused_root = det_data
    ds = build_yolo_dataset(fused_root, data_root, tmp_path / "work")
    kinds = set()
    for stem in ds.stems["train"]:
        source = read_image(fused_root / "train" / f"{stem}.png")
        loaded = imread(str(ds.image_path("train", stem)))  # how ultralytics' datasets load (BGR)
        assert loaded.ndim == 3 and loaded.shape[2] == 3
        if source.ndim == 2:
            kinds.add("grey")
            for c in range(3):
                np.testing.assert_array_equal(loaded[..., c], source)
        else:
            kinds.add("colour")
            np.testing.assert_array_equal(loaded[..., ::-1], source)
    assert kinds == {"grey", "colour"}


def test_missing_label_file_becomes_empty_and_labels_are_checked(det_data, tmp_path) -> None:
    data_root, fused_root = _copy_data(det_data, tmp_path)
    stem = sorted(p.stem for p in (data_root / "train" / "labels").glob("*.txt"))[0]
    (data_root / "train" / "labels" / f"{stem}.txt").unlink()
    ds = build_yolo_dataset(fused_root, data_root, tmp_path / "work")
    label = ds.label_path("train", stem)
    assert label.is_file() and not label.is_symlink() and label.read_text() == ""

    (data_root / "train" / "labels" / f"{stem}.txt").write_text("7 0.5 0.5 0.1 0.1\n")
    with pytest.raises(DatasetError, match=rf"{stem}\.txt:1: class 7"):
        build_yolo_dataset(fused_root, data_root, tmp_path / "work2")


def test_read_yolo_file_checks_prepared_labels(tmp_path) -> None:
    path = tmp_path / "a.txt"
    path.write_text("0 0.5 0.5 0.2 0.2\n\n1 0.1 0.2 0.1 0.1\n")
    assert read_yolo_file(path, 2) == [(0, 0.5, 0.5, 0.2, 0.2), (1, 0.1, 0.2, 0.1, 0.1)]
    path.write_text("0 0.5 0.5 0.2\n")
    with pytest.raises(DatasetError, match="a.txt:1"):
        read_yolo_file(path, 2)
    path.write_text("0 0.5 1.5 0.2 0.2\n")
    with pytest.raises(DatasetError, match="normalised"):
        read_yolo_file(path, 2)
    path.write_text("0 0.5 0.5 0.2 0.2\n2 0.5 0.5 0.2 0.2\n")
    with pytest.raises(DatasetError, match=r"a\.txt:2: class 2 outside 0\.\.1"):
        read_yolo_file(path, 2)
    assert len(read_yolo_file(path)) == 2  # without n_classes (raw labels): no range checks
    with pytest.raises(DatasetError, match="cannot read the label file"):
        read_yolo_file(tmp_path / "missing.txt", 2)


def test_fused_and_prepared_stems_must_match(det_data, tmp_path) -> None:
    data_root, fused_root = _copy_data(det_data, tmp_path)
    victim = sorted((fused_root / "test").glob("*.png"))[0]
    victim.unlink()
    with pytest.raises(DatasetError, match=rf"no fused image for test/{victim.stem}"):
        build_yolo_dataset(fused_root, data_root, tmp_path / "work")


def test_dataset_without_detection_labels_is_refused(det_data, tmp_path) -> None:
    data_root, fused_root = _copy_data(det_data, tmp_path)
    manifest = Manifest.load(data_root)
    manifest.has_det_labels = False
    manifest.save(data_root)
    with pytest.raises(DatasetError, match="no detection labels"):
        build_yolo_dataset(fused_root, data_root, tmp_path / "work")


def test_missing_val_split_falls_back_to_train_never_test(det_data, tmp_path) -> None:
    data_root, fused_root = _copy_data(det_data, tmp_path)
    shutil.rmtree(data_root / "val")
    shutil.rmtree(fused_root / "val")
    ds = build_yolo_dataset(fused_root, data_root, tmp_path / "work")
    assert ds.sources["val"] == "train"
    assert ds.stems["val"] == ds.stems["train"]
    with pytest.raises(DatasetError, match="test split"):
        build_yolo_dataset(fused_root, data_root, tmp_path / "work2", val_fallback="test")


def test_copies_when_symlinks_are_impossible(det_data, tmp_path, monkeypatch) -> None:
    data_root, fused_root = det_data

    def refuse(*args, **kwargs):
        raise OSError("symlinks not permitted")

    monkeypatch.setattr(os, "symlink", refuse)
    ds = build_yolo_dataset(fused_root, data_root, tmp_path / "work")
    assert not ds.linked
    stem = ds.stems["test"][0]
    image = ds.image_path("test", stem)
    assert image.is_file() and not image.is_symlink()
    assert image.read_bytes() == (fused_root / "test" / f"{stem}.png").read_bytes()


def test_rebuilding_replaces_old_links(det_data, tmp_path) -> None:
    data_root, fused_root = det_data
    work = tmp_path / "work"
    build_yolo_dataset(fused_root, data_root, work)
    (work / "images" / "train" / "stale.png").write_bytes(b"")
    ds = build_yolo_dataset(fused_root, data_root, work)
    assert not (work / "images" / "train" / "stale.png").exists()
    assert len(list((work / "images" / "train").iterdir())) == len(ds.stems["train"])
