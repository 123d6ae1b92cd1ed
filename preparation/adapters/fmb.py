"""FMB (Liu et al., SegMiF, ICCV 2023): `train|test/{Infrared,Visible,Label}`.

`Label/` holds class-id PNGs. The class list below is the one DATASETS.md reports as
unverified (14 classes + unlabelled): set `dataset.seg_classes` (a list, or a file with one
name per line) when your release differs; ids outside the list are reported, not guessed.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from mmif.errors import DatasetError
from preparation.adapters.base import (
    Plan,
    attach_masks,
    find_dir,
    pair_records,
    require_dir,
    resolve_classes,
    split_dirs,
)
from preparation.validate import Report

if TYPE_CHECKING:
    from preparation.prepare import DatasetConfig

# unverified (DATASETS.md): overridable via dataset.seg_classes
SEG_CLASSES = [
    "unlabelled",
    "road",
    "sidewalk",
    "building",
    "lamp",
    "sign",
    "vegetation",
    "sky",
    "person",
    "car",
    "truck",
    "bus",
    "motorcycle",
    "bicycle",
    "pole",
]


def discover(root: Path, cfg: DatasetConfig, report: Report) -> Plan:
    require_dir(root, "FMB folder")
    splits = split_dirs(root)
    if not splits:
        raise DatasetError(
            f"{root}: no FMB layout found; expected train/ and/or test/ holding Infrared/ and Visible/"
        )
    records = []
    with_masks = False
    for split, d in splits.items():
        ir_dir, vis_dir = find_dir(d, ["Infrared", "ir"]), find_dir(d, ["Visible", "vi", "vis"])
        if ir_dir is None or vis_dir is None:
            raise DatasetError(f"{d}: expected Infrared/ and Visible/ folders inside")
        recs = pair_records(ir_dir, vis_dir, split, report)
        label_dir = find_dir(d, ["Label", "Labels"])
        if label_dir is not None:
            recs = attach_masks(recs, label_dir, report)
            with_masks = True
        records += recs
    return Plan(
        adapter="fmb",
        root=root,
        records=records,
        seg_classes=resolve_classes(cfg.seg_classes, SEG_CLASSES, "seg_classes")
        if with_masks
        else [],
        notes={"splits": sorted(splits), "seg_classes_verified": cfg.seg_classes is not None},
    )
