"""What an adapter returns, and the folder helpers the adapters share.

An adapter only looks at names on disk: it finds the pair folders of one upstream layout, matches
infrared and visible files by stem, attaches annotation files, and says which class lists apply.
Reading and checking the images is left to `preparation.prepare`, the same for every dataset.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Literal

from mmif.errors import DatasetError
from preparation.annotations import read_class_list
from preparation.validate import (
    Report,
    list_files,
    list_image_files,
    match_annotations,
    match_pairs,
)

LabelFormat = Literal["yolo", "voc"]
UPSTREAM_SPLITS = ("train", "val", "test")


@dataclass(frozen=True)
class PairRecord:
    """Files of one pair. split: the upstream split, or None when the release has none."""

    stem: str
    ir: Path
    vis: Path
    split: str | None = None
    labels: Path | None = None  # YOLO .txt or VOC .xml, see Plan.label_format
    mask: Path | None = None  # class-id PNG


@dataclass
class Plan:
    """Everything an adapter found, before any image is read.

    det_classes / seg_classes: class names in id order (empty when the release has none).
    seg_palette: colour of each class id, for releases whose masks are colour visualisations.
    notes: layout facts for the manifest (folders used, variant recognised, ...).
    """

    adapter: str
    root: Path
    records: list[PairRecord]
    label_format: LabelFormat | None = None
    det_classes: list[str] = field(default_factory=list)
    seg_classes: list[str] = field(default_factory=list)
    seg_palette: list[tuple[int, int, int]] | None = None
    notes: dict = field(default_factory=dict)


def find_dir(parent: Path, names: Sequence[str]) -> Path | None:
    """The first sub-folder of `parent` whose name is one of `names` (case-insensitive, in order)."""
    if not parent.is_dir():
        return None
    children = {p.name.lower(): p for p in sorted(parent.iterdir()) if p.is_dir()}
    for name in names:
        if name.lower() in children:
            return children[name.lower()]
    return None


def split_dirs(root: Path) -> dict[str, Path]:
    """Upstream split folders (train/val/test, any case) directly under root."""
    out = {}
    for split in UPSTREAM_SPLITS:
        d = find_dir(root, [split])
        if d is not None:
            out[split] = d
    return out


def pair_records(
    ir_dir: Path, vis_dir: Path, split: str | None, report: Report, prefix: str = ""
) -> list[PairRecord]:
    """Records for the pairs of two folders matched by stem (missing partners are errors)."""
    irs = list_image_files(ir_dir, report)
    viss = list_image_files(vis_dir, report)
    stems = match_pairs(irs, viss, ir_dir, vis_dir, report)
    return [PairRecord(stem=prefix + s, ir=irs[s], vis=viss[s], split=split) for s in stems]


def attach_labels(
    records: list[PairRecord],
    folder: Path,
    suffix: str,
    report: Report,
    prefix: str = "",
    warn_orphans: bool = True,
) -> list[PairRecord]:
    """Records with `labels` set from `<folder>/<stem><suffix>`; a pair without one is an error.

    `warn_orphans=False` when one folder serves several splits (its other files are not orphans).
    """
    files = {prefix + k: v for k, v in list_files(folder, suffix).items() if k.lower() != "classes"}
    fix = (
        "add an empty file if the image holds no object"
        if suffix == ".txt"
        else "add the annotation"
    )
    found = match_annotations(
        [r.stem for r in records],
        files,
        folder,
        f"label file ({suffix})",
        fix,
        report,
        warn_orphans,
    )
    return [replace(r, labels=found.get(r.stem)) for r in records]


def attach_masks(
    records: list[PairRecord], folder: Path, report: Report, prefix: str = ""
) -> list[PairRecord]:
    """Records with `mask` set from the image of the same stem in `folder`."""
    files = {prefix + k: v for k, v in list_image_files(folder, report).items()}
    found = match_annotations(
        [r.stem for r in records], files, folder, "segmentation mask", "add the label PNG", report
    )
    return [replace(r, mask=found.get(r.stem)) for r in records]


def resolve_classes(
    override: list[str] | str | None, default: Sequence[str], what: str
) -> list[str]:
    """The class list: an override list, a file of names (one per line), or the default."""
    if override is None:
        return list(default)
    if isinstance(override, str):
        return read_class_list(override)
    if not override:
        raise DatasetError(
            f"dataset.{what}: empty class list; give names or leave it unset for the default"
        )
    return list(override)


def require_dir(path: Path, what: str) -> Path:
    if not path.is_dir():
        raise DatasetError(f"{path}: {what} not found; check dataset.root (or --root)")
    return path
