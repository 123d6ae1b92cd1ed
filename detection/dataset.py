"""An ultralytics dataset for one fusion method, built from links outside the data folders.

    <work>/data.yaml
    <work>/images/<split>/<stem>.png   -> data/fused/<method>/<split>/<stem>.png   (symlink)
    <work>/labels/<split>/<stem>.txt   -> data/prepared/<split>/labels/<stem>.txt (symlink)

ultralytics finds labels by replacing the last `images` folder of an image path with `labels`, and
writes `labels/<split>.cache` next to them; building this tree in a work folder keeps both
requirements away from DVC-tracked data. Where symlinks are not possible the files are copied.

Every method's images enter the detector the same way: ultralytics reads them with OpenCV in
colour mode (`channels: 3`), so grey images become three equal channels and colour ones stay
colour.
"""

from __future__ import annotations

import logging
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from mmif.data.annotations import parse_yolo_line
from mmif.data.layout import Manifest, list_pairs
from mmif.errors import InputError
from mmif.io import ImageError, list_images, write_text

log = logging.getLogger(__name__)

YOLO_SPLITS = ("train", "val", "test")


class DatasetError(InputError):
    """The fused images or the labels cannot form a detection dataset; the message says why."""


@dataclass
class YoloDataset:
    """A built work folder: where its data.yaml is, what it holds, and how it was made."""

    root: Path
    yaml_path: Path
    class_names: list[str]
    stems: dict[str, list[str]] = field(default_factory=dict)  # ultralytics split -> stems
    sources: dict[str, str] = field(
        default_factory=dict
    )  # ultralytics split -> prepared split used
    linked: bool = True  # symlinks (True) or copies (False)

    def image_path(self, split: str, stem: str) -> Path:
        # by stem, not glob: a stem may hold glob characters ("scene [2]")
        folder = self.root / "images" / split
        matches = sorted(p for p in folder.iterdir() if p.stem == stem) if folder.is_dir() else []
        if not matches:
            raise KeyError(f"{stem} is not in split {split} of {self.root}")
        return matches[0]

    def label_path(self, split: str, stem: str) -> Path:
        return self.root / "labels" / split / f"{stem}.txt"


def read_yolo_labels(path: Path, n_classes: int) -> list[tuple[int, float, float, float, float]]:
    """Parse a YOLO label file ("cls cx cy w h", normalised) and check every row.

    An empty file means no objects. Raises DatasetError naming the file and line for a row that
    is not five numbers, a class outside 0..n_classes-1 or coordinates outside [0, 1].
    """
    rows = []
    for number, line in enumerate(Path(path).read_text().splitlines(), start=1):
        if not line.strip():
            continue
        try:
            cls, cx, cy, w, h = parse_yolo_line(line)
        except ValueError as exc:
            raise DatasetError(
                f"{path}:{number}: {exc}; fix the line or re-run `mmif prepare`"
            ) from None
        if not 0 <= cls < n_classes:
            raise DatasetError(
                f"{path}:{number}: class {cls} outside 0..{n_classes - 1} (manifest det_classes)"
            )
        if not all(0.0 <= v <= 1.0 for v in (cx, cy, w, h)):
            raise DatasetError(
                f"{path}:{number}: coordinates must be normalised to [0, 1]; re-run `mmif prepare`"
            )
        rows.append((cls, cx, cy, w, h))
    return rows


def build_yolo_dataset(
    fused_root: Path,
    data_root: Path,
    work_dir: Path,
    val_fallback: str = "train",
) -> YoloDataset:
    """Link one method's fused images and the shared labels into an ultralytics dataset.

    fused_root: data/fused/<method> with <split>/<stem>.<ext> images (grey or RGB).
    data_root: the prepared dataset (manifest.json with det_classes, <split>/labels/*.txt).
    work_dir: an empty or new folder outside the data folders; it receives data.yaml,
        images/<split>/ and labels/<split>/.
    val_fallback: prepared split that stands in for ultralytics' validation split when the
        dataset has no `val` split (never `test`, which would leak the test set into model
        selection).

    Every fused image needs a prepared pair of the same stem; a missing label file means an image
    without objects. Raises DatasetError (naming the folder and the fix) when the dataset has no
    detection labels, a split is missing or stems do not match.
    """
    fused_root, data_root, work_dir = Path(fused_root), Path(data_root), Path(work_dir)
    manifest = Manifest.load(data_root)
    if not manifest.has_det_labels or not manifest.det_classes:
        raise DatasetError(
            f"{data_root}/manifest.json: dataset '{manifest.name}' has no detection labels (det_classes)"
        )
    names = list(manifest.det_classes)
    work_dir = work_dir.resolve()
    if _inside(work_dir, data_root.resolve()) or _inside(work_dir, fused_root.resolve()):
        raise DatasetError(
            f"{work_dir}: the work folder must lie outside {data_root} and {fused_root}"
        )
    work_dir.mkdir(parents=True, exist_ok=True)

    sources = {"train": "train", "val": "val", "test": "test"}
    if not (data_root / "val").is_dir() or not (fused_root / "val").is_dir():
        if val_fallback == "test":
            raise DatasetError("val_fallback: the test split must not select the model")
        log.warning(
            "%s has no val split: ultralytics validates on the %s split instead",
            data_root,
            val_fallback,
        )
        sources["val"] = val_fallback

    ds = YoloDataset(
        root=work_dir, yaml_path=work_dir / "data.yaml", class_names=names, sources=sources
    )
    for split, source in sources.items():
        ds.stems[split] = _link_split(ds, split, source, fused_root, data_root, len(names))
    log.info(
        "detection dataset for %s in %s (%s): %s",
        fused_root.name,
        work_dir,
        "symlinks" if ds.linked else "copies",
        ", ".join(f"{s} {len(v)}" for s, v in ds.stems.items()),
    )
    description = {
        "path": str(work_dir),
        "train": "images/train",
        "val": "images/val",
        "test": "images/test",
        "channels": 3,
        "names": dict(enumerate(names)),
    }
    write_text(ds.yaml_path, yaml.safe_dump(description, sort_keys=False))
    return ds


def _link_split(
    ds: YoloDataset, split: str, source: str, fused_root: Path, data_root: Path, nc: int
) -> list[str]:
    fused_dir = fused_root / source
    if not fused_dir.is_dir():
        raise DatasetError(
            f"{fused_dir}: no fused {source} split; run `mmif fuse` for this method first"
        )
    try:
        fused = list_images(fused_dir)
    except ImageError as exc:
        raise DatasetError(str(exc)) from exc
    pairs = {p.stem: p for p in list_pairs(data_root, source)}
    if not fused:
        raise DatasetError(f"{fused_dir}: no images")
    missing = sorted(set(pairs) - set(fused))
    extra = sorted(set(fused) - set(pairs))
    if extra:
        raise DatasetError(
            f"{fused_dir / fused[extra[0]].name}: no prepared pair in {data_root / source}; re-run `mmif fuse`"
        )
    if missing:
        raise DatasetError(
            f"no fused image for {source}/{missing[0]} in {fused_dir} ({len(missing)} missing); re-run `mmif fuse`"
        )

    image_dir, label_dir = ds.root / "images" / split, ds.root / "labels" / split
    for folder in (image_dir, label_dir):
        if folder.exists():
            shutil.rmtree(folder)
        folder.mkdir(parents=True)
    for stem, image in fused.items():
        ds.linked &= _link_or_copy(image, image_dir / image.name)
        labels = pairs[stem].labels
        if labels is None:
            (label_dir / f"{stem}.txt").write_text("")
        else:
            read_yolo_labels(labels, nc)
            ds.linked &= _link_or_copy(labels, label_dir / f"{stem}.txt")
    return sorted(fused)


def _link_or_copy(source: Path, dest: Path) -> bool:
    """Symlink dest -> source (absolute); copy when the file system refuses. True if linked."""
    try:
        os.symlink(source.resolve(), dest)
        return True
    except (OSError, NotImplementedError):
        shutil.copyfile(source, dest)
        return False


def _inside(path: Path, folder: Path) -> bool:
    return path == folder or folder in path.parents
