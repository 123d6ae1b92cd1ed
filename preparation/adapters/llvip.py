"""LLVIP (Jia et al., ICCVW 2021): `infrared|visible/{train,test}/` JPEGs and `Annotations/`.

Annotations are Pascal VOC XML named by stem, class `person`, in one folder for both splits.
"""

from __future__ import annotations

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
    split_dirs,
)
from preparation.validate import Report

if TYPE_CHECKING:
    from preparation.prepare import DatasetConfig

DET_CLASSES = ["person"]


def discover(root: Path, cfg: DatasetConfig, report: Report) -> Plan:
    require_dir(root, "LLVIP folder")
    ir_root, vis_root = find_dir(root, ["infrared"]), find_dir(root, ["visible"])
    if ir_root is None or vis_root is None:
        raise DatasetError(
            f"{root}: no LLVIP layout found; expected infrared/ and visible/ with train/ and test/"
        )
    ir_splits, vis_splits = split_dirs(ir_root), split_dirs(vis_root)
    if set(ir_splits) != set(vis_splits) or not ir_splits:
        raise DatasetError(
            f"{root}: infrared/ has splits {sorted(ir_splits)} but visible/ has {sorted(vis_splits)}; "
            "both need the same train/ and test/ folders"
        )
    records = []
    for split in ir_splits:
        records += pair_records(ir_splits[split], vis_splits[split], split, report)
    ann_dir = find_dir(root, ["Annotations", "Annotation"])
    if ann_dir is not None:
        records = attach_labels(records, ann_dir, ".xml", report, warn_orphans=True)
    return Plan(
        adapter="llvip",
        root=root,
        records=records,
        label_format="voc" if ann_dir is not None else None,
        det_classes=resolve_classes(cfg.det_classes, DET_CLASSES, "det_classes")
        if ann_dir is not None
        else [],
        notes={"splits": sorted(ir_splits), "labels": ann_dir.name if ann_dir else None},
    )
