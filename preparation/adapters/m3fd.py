"""M3FD (Liu et al., TarDAL, CVPR 2022), in either of its two circulating layouts.

- As downloaded: `Ir/`, `Vis/`, `Annotation/` (Pascal VOC XML per image). No official split:
  prepare makes a seeded one.
- TarDAL's re-organised copy: `ir/`, `vi/`, `labels/` (YOLO txt) and `meta/train.txt`,
  `meta/val.txt` (stems). TarDAL evaluates on `val`, so it becomes our `test` split (and
  prepare carves `val` from train); when `meta/test.txt` exists, val and test keep their names.

Classes (TarDAL's loader order): People, Car, Bus, Lamp, Motorcycle, Truck; override with
`dataset.det_classes`.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from mmif.errors import DatasetError
from preparation.adapters.base import (
    Plan,
    attach_labels,
    find_dir,
    pair_records,
    require_dir,
    resolve_classes,
)
from preparation.validate import Report

if TYPE_CHECKING:
    from preparation.prepare import DatasetConfig

DET_CLASSES = ["People", "Car", "Bus", "Lamp", "Motorcycle", "Truck"]


def discover(root: Path, cfg: DatasetConfig, report: Report) -> Plan:
    require_dir(root, "M3FD folder")
    ir_dir, vis_dir = find_dir(root, ["ir", "infrared"]), find_dir(root, ["vis", "vi", "visible"])
    if ir_dir is None or vis_dir is None:
        raise DatasetError(
            f"{root}: no M3FD layout found; expected Ir/ and Vis/ (or TarDAL's ir/ and vi/)"
        )
    records = pair_records(ir_dir, vis_dir, None, report)
    voc_dir = find_dir(root, ["Annotation", "Annotations"])
    yolo_dir = find_dir(root, ["labels"])
    meta_dir = find_dir(root, ["meta"])
    notes: dict = {"ir": ir_dir.name, "vis": vis_dir.name}
    label_format = None
    if voc_dir is not None:
        records = attach_labels(records, voc_dir, ".xml", report)
        label_format, notes["labels"] = "voc", voc_dir.name
    elif yolo_dir is not None:
        records = attach_labels(records, yolo_dir, ".txt", report)
        label_format, notes["labels"] = "yolo", yolo_dir.name
    if meta_dir is not None:
        records = _apply_meta(records, meta_dir, report)
        notes["layout"] = "tardal"
        notes["split_from"] = str(meta_dir)
    else:
        notes["layout"] = "m3fd"
    return Plan(
        adapter="m3fd",
        root=root,
        records=records,
        label_format=label_format,
        det_classes=resolve_classes(cfg.det_classes, DET_CLASSES, "det_classes")
        if label_format
        else [],
        notes=notes,
    )


def _apply_meta(records, meta_dir: Path, report: Report):
    lists = {
        name: meta_dir / f"{name}.txt"
        for name in ("train", "val", "test")
        if (meta_dir / f"{name}.txt").is_file()
    }
    if not lists:
        raise DatasetError(
            f"{meta_dir}: expected train.txt and val.txt listing stems; add them or remove meta/"
        )
    rename = {"train": "train", "val": "val" if "test" in lists else "test", "test": "test"}
    split_of: dict[str, str] = {}
    for name, path in lists.items():
        for line in path.read_text().splitlines():
            stem = Path(line.strip()).stem
            if stem:
                split_of[stem] = rename[name]
    known = {r.stem for r in records}
    unknown = sorted(set(split_of) - known)
    if unknown:
        report.warning(
            "orphan-annotation",
            meta_dir,
            f"{len(unknown)} listed stem(s) without an image pair (e.g. {unknown[0]})",
        )
    unlisted = [r.stem for r in records if r.stem not in split_of]
    if unlisted:
        report.warning(
            "unlisted",
            meta_dir,
            f"{len(unlisted)} pair(s) in no split list left out (e.g. {unlisted[0]})",
        )
    return [replace(r, split=split_of[r.stem]) for r in records if r.stem in split_of]
