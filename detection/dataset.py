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

from mmif.errors import DatasetError
from mmif.io import ImageError, list_images, write_text
from mmif.labels import format_yolo, read_yolo_file
from mmif.layout import Manifest, list_pairs

log = logging.getLogger(__name__)

YOLO_SPLITS = ("train", "val", "test")
#: the fix of a bad label of a prepared dataset
PREPARED_FIX = "fix the line or re-run `mmif prepare`"


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


def build_yolo_dataset(
    fused_root: Path,
    data_root: Path,
    work_dir: Path,
    val_fallback: str = "train",
    splits: tuple[str, ...] = YOLO_SPLITS,
) -> YoloDataset:
    """Link one method's fused images and the shared labels into an ultralytics dataset.

    fused_root: data/fused/<method> with <split>/<stem>.<ext> images (grey or RGB).
    data_root: the prepared dataset (manifest.json with det_classes, <split>/labels/*.txt).
    work_dir: an empty or new folder outside the data folders; it receives data.yaml,
        images/<split>/ and labels/<split>/.
    val_fallback: prepared split that stands in for ultralytics' validation split when the
        dataset has no `val` split (never `test`, which would leak the test set into model
        selection).
    splits: the ultralytics splits to build; ("test",) builds an evaluation-only dataset (a
        frozen model scoring a method whose fused images exist for the test split only), whose
        data.yaml points train and val at the test images too: ultralytics wants both keys, and
        nothing is trained on such a dataset.

    Every fused image needs a prepared pair of the same stem; a missing label file means an image
    without objects. Raises DatasetError (naming the folder and the fix) when the dataset has no
    detection labels, a split is missing or stems do not match.
    """
    fused_root, data_root = Path(fused_root), Path(data_root)
    names = _class_names(data_root)
    work_dir = _work_folder(work_dir, data_root, fused_root)
    sources = {split: split for split in splits}
    if "val" in sources and (not (data_root / "val").is_dir() or not (fused_root / "val").is_dir()):
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
        entries = _fused_entries(fused_root, data_root, source)
        ds.stems[split] = _link_entries(ds, split, entries, len(names))
    log.info(
        "detection dataset for %s in %s (%s): %s",
        fused_root.name,
        work_dir,
        "symlinks" if ds.linked else "copies",
        ", ".join(f"{s} {len(v)}" for s, v in ds.stems.items()),
    )
    _write_yaml(ds)
    return ds


def build_source_dataset(
    data_root: Path,
    work_dir: Path,
    modalities: tuple[str, ...] = ("ir", "vis"),
    val_fallback: str = "train",
    modality_labels: bool = True,
) -> YoloDataset:
    """An ultralytics dataset of the prepared source images: each modality a separate sample.

    The shared task model of the frozen and finetune protocols trains on it: train holds every
    train pair's infrared and visible image (`<stem>_ir`, `<stem>_vis`) with the pair's labels,
    val the same for the val split (`val_fallback` when there is none). No test split is built.
    modality_labels: drop from each sample the boxes of classes its modality does not show
    (`Manifest.sees`: the synthetic data records that bicycles are invisible in infrared and
    people in visible light at night; real datasets record nothing and keep every box). A box
    on an empty patch of road teaches the detector to fire on empty road, which slows learning
    the class in the modality that does show it.
    """
    data_root = Path(data_root)
    names = _class_names(data_root)
    manifest = Manifest.load(data_root)
    work_dir = _work_folder(work_dir, data_root, data_root)
    sources = {"train": "train", "val": "val"}
    if not list_pairs(data_root, "val"):
        if val_fallback == "test":
            raise DatasetError("val_fallback: the test split must not select the model")
        log.warning(
            "%s has no val split: the shared model validates on the %s split instead",
            data_root,
            val_fallback,
        )
        sources["val"] = val_fallback
    ds = YoloDataset(
        root=work_dir, yaml_path=work_dir / "data.yaml", class_names=names, sources=sources
    )
    for split, source in sources.items():
        pairs = list_pairs(data_root, source)
        if not pairs:
            raise DatasetError(f"{data_root / source}: no prepared pairs; run `mmif prepare`")
        entries = [(f"{p.stem}_{m}", getattr(p, m), p.labels) for p in pairs for m in modalities]
        hidden = {}
        if modality_labels:
            for p in pairs:
                for m in modalities:
                    gone = {c for c, n in enumerate(names) if not manifest.sees(n, m, p.stem)}
                    if gone:
                        hidden[f"{p.stem}_{m}"] = gone
        ds.stems[split] = _link_entries(ds, split, entries, len(names), hidden)
    if modality_labels and manifest.modality_visibility:
        log.info(
            "boxes of classes a modality does not show are left out of its samples (%s)",
            "; ".join(
                f"{n}: " + ", ".join(k for k, v in manifest.modality_visibility[n].items() if not v)
                for n in names
                if n in manifest.modality_visibility
                and not all(manifest.modality_visibility[n].values())
            ),
        )
    log.info(
        "source-image detection dataset (%s as separate samples) in %s: %s",
        " and ".join(modalities),
        work_dir,
        ", ".join(f"{s} {len(v)}" for s, v in ds.stems.items()),
    )
    _write_yaml(ds)
    return ds


def _class_names(data_root: Path) -> list[str]:
    manifest = Manifest.load(data_root)
    if not manifest.has_det_labels or not manifest.det_classes:
        raise DatasetError(
            f"{data_root}/manifest.json: dataset '{manifest.name}' has no detection labels (det_classes)"
        )
    return list(manifest.det_classes)


def _work_folder(work_dir: Path, data_root: Path, fused_root: Path) -> Path:
    work_dir = Path(work_dir).resolve()
    if _inside(work_dir, data_root.resolve()) or _inside(work_dir, fused_root.resolve()):
        raise DatasetError(
            f"{work_dir}: the work folder must lie outside {data_root} and {fused_root}"
        )
    work_dir.mkdir(parents=True, exist_ok=True)
    return work_dir


def _write_yaml(ds: YoloDataset) -> None:
    built = list(ds.stems)
    # ultralytics wants train and val keys; an evaluation-only dataset points them at its test
    # images (nothing trains on it)
    fallback = built[0]
    description = {
        "path": str(ds.root),
        **{split: f"images/{split if split in ds.stems else fallback}" for split in YOLO_SPLITS},
        "channels": 3,
        "names": dict(enumerate(ds.class_names)),
    }
    write_text(ds.yaml_path, yaml.safe_dump(description, sort_keys=False))


def _fused_entries(
    fused_root: Path, data_root: Path, source: str
) -> list[tuple[str, Path, Path | None]]:
    """(stem, fused image, label file or None) of one split, checked against the prepared pairs."""
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
    return [(stem, fused[stem], pairs[stem].labels) for stem in sorted(fused)]


def _link_entries(
    ds: YoloDataset,
    split: str,
    entries: list[tuple[str, Path, Path | None]],
    nc: int,
    hidden: dict[str, set[int]] | None = None,
) -> list[str]:
    """Link (name, image, labels) entries into images/<split>/ and labels/<split>/.

    hidden: name -> class ids whose boxes are left out of that entry's label file (written as
    a filtered copy instead of a link).
    """
    hidden = hidden or {}
    image_dir, label_dir = ds.root / "images" / split, ds.root / "labels" / split
    for folder in (image_dir, label_dir):
        if folder.exists():
            shutil.rmtree(folder)
        folder.mkdir(parents=True)
    for name, image, labels in entries:
        ds.linked &= _link_or_copy(image, image_dir / f"{name}{image.suffix}")
        if labels is None:
            (label_dir / f"{name}.txt").write_text("")
        elif name in hidden:
            rows = [r for r in read_yolo_file(labels, nc, PREPARED_FIX) if r[0] not in hidden[name]]
            (label_dir / f"{name}.txt").write_text(format_yolo(rows))
        else:
            read_yolo_file(labels, nc, PREPARED_FIX)
            ds.linked &= _link_or_copy(labels, label_dir / f"{name}.txt")
    return sorted(name for name, _, _ in entries)


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
