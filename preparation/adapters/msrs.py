"""MSRS (Tang et al., PIAFusion 2022; from MFNet): `train|test/{ir,vi,Segmentation_labels}`.

Stems such as `00012N` carry day (D) / night (N). A folder may hold only some splits (for
example only `test/`). Detection boxes come from a separate release given as `det_labels`:
either a flat folder of `<stem>.txt`, or one with `<split>/<stem>.txt`, or the release root
with `fusion|infrared|visible/<split>/` (the `fusion` set is used). Its `classes.txt`, when
present, names the classes; otherwise person, bicycle, car. A `<split>/det_labels/` folder next
to `ir/` and `vi/` is used when no `det_labels` is given.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from mmif.errors import DatasetError
from preparation.adapters.base import (
    PairRecord,
    Plan,
    attach_labels,
    attach_masks,
    find_dir,
    pair_records,
    require_dir,
    resolve_classes,
    split_dirs,
)
from preparation.annotations import read_class_list
from preparation.validate import Report

if TYPE_CHECKING:
    from preparation.prepare import DatasetConfig

SEG_CLASSES = [
    "unlabelled",
    "car",
    "person",
    "bike",
    "curve",
    "car_stop",
    "guardrail",
    "color_cone",
    "bump",
]
# the authors' visualisation colours, used when masks come as colour images
SEG_PALETTE = [
    (0, 0, 0),
    (64, 0, 128),
    (64, 64, 0),
    (0, 128, 192),
    (0, 0, 192),
    (128, 128, 0),
    (64, 64, 128),
    (192, 128, 128),
    (192, 64, 0),
]
DET_CLASSES = ["person", "bicycle", "car"]
IR_NAMES = ("ir", "infrared")
VIS_NAMES = ("vi", "vis", "visible")
MASK_NAMES = ("Segmentation_labels", "Label", "labels_seg")


def discover(root: Path, cfg: DatasetConfig, report: Report) -> Plan:
    require_dir(root, "MSRS folder")
    splits = split_dirs(root) or ({None: root} if find_dir(root, IR_NAMES) else {})
    if not splits:
        raise DatasetError(
            f"{root}: no MSRS layout found; expected train/ and/or test/ holding ir/ and vi/"
        )
    det_root = Path(cfg.det_labels) if cfg.det_labels else None
    if det_root is not None:
        require_dir(det_root, "detection label folder (det_labels)")
        if find_dir(det_root, ["fusion"]) is not None:
            det_root = find_dir(det_root, ["fusion"])
    records: list[PairRecord] = []
    notes: dict = {"splits": {}, "det_labels": None, "masks": False}
    class_files: list[Path] = []
    for split, d in splits.items():
        ir_dir, vis_dir = find_dir(d, IR_NAMES), find_dir(d, VIS_NAMES)
        if ir_dir is None or vis_dir is None:
            raise DatasetError(
                f"{d}: expected ir/ and vi/ folders inside; found {sorted(p.name for p in d.iterdir())}"
            )
        recs = pair_records(ir_dir, vis_dir, split, report)
        mask_dir = find_dir(d, MASK_NAMES)
        if mask_dir is not None:
            recs = attach_masks(recs, mask_dir, report)
            notes["masks"] = True
        label_dir = (
            _label_dir(det_root, split) if det_root is not None else find_dir(d, ["det_labels"])
        )
        if label_dir is not None:
            shared = det_root is not None and label_dir == det_root and len(splits) > 1
            recs = attach_labels(recs, label_dir, ".txt", report, warn_orphans=not shared)
            notes["det_labels"] = str(label_dir)
            given = [Path(cfg.det_labels)] if cfg.det_labels else []
            for folder in (label_dir, label_dir.parent, *given):
                if (folder / "classes.txt").is_file() and folder / "classes.txt" not in class_files:
                    class_files.append(folder / "classes.txt")
        notes["splits"][split or "none"] = str(d)
        records += recs
    has_labels = any(r.labels for r in records)
    if cfg.det_classes is None and class_files:
        det_classes = read_class_list(class_files[0])
        notes["det_classes_from"] = str(class_files[0])
    else:
        det_classes = resolve_classes(cfg.det_classes, DET_CLASSES, "det_classes")
    return Plan(
        adapter="msrs",
        root=root,
        records=records,
        label_format="yolo" if has_labels else None,
        det_classes=det_classes if has_labels else [],
        seg_classes=resolve_classes(cfg.seg_classes, SEG_CLASSES, "seg_classes")
        if notes["masks"]
        else [],
        seg_palette=SEG_PALETTE if cfg.seg_classes is None else None,
        notes=notes,
    )


def _label_dir(det_root: Path, split: str | None) -> Path:
    if split is not None:
        sub = find_dir(det_root, [split])
        if sub is not None:
            return sub
    return det_root
