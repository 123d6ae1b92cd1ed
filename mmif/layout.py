"""The canonical prepared layout that every stage after `prepare` reads.

    <root>/manifest.json
    <root>/<split>/ir/<stem>.png        8-bit grey infrared (or first source)
    <root>/<split>/vis/<stem>.png       8-bit grey or RGB visible (or second source)
    <root>/<split>/labels/<stem>.txt    YOLO boxes "cls cx cy w h" normalised (optional)
    <root>/<split>/masks/<stem>.png     segmentation class ids, 255 = ignore (optional)
    <root>/<split>/salient/<stem>.png   salient-target mask, 0 or 255 (optional)

Splits are `train`, `val` and `test`; a dataset may hold only some of them.
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path

from mmif.errors import InputError, MissingInputError
from mmif.io import ImageError, list_images, write_json

SPLITS = ("train", "val", "test")
IGNORE_INDEX = 255
#: capture condition from the tag after the frame number at the end of an image stem (MSRS and
#: the synthetic default name their images `00012N`, `test_00003D`)
CONDITIONS = {"D": "day", "N": "night"}
_CONDITION_TAG = re.compile(r"\d([DN])$")
MODALITIES = ("ir", "vis")


def condition_of(stem: str) -> str | None:
    """'day' / 'night' for an MSRS-style stem (a frame number, then D or N at the end), else None.

    The one day/night rule of every stage (the splits, the manifest's counts, the report's
    per-condition scores, the synthetic visibility record). The digit before the tag keeps
    names that merely end in a capital D or N ("ROAD", "TNO_CAMPN") out of both groups.
    """
    m = _CONDITION_TAG.search(stem)
    return CONDITIONS[m.group(1)] if m else None


@dataclass
class Manifest:
    """What a prepared dataset holds; written as manifest.json next to the splits."""

    name: str
    provenance: str
    splits: dict[str, int]
    det_classes: list[str] = field(default_factory=list)
    seg_classes: list[str] = field(default_factory=list)
    image_sizes: dict[str, list[int]] = field(default_factory=dict)  # "WxH" -> count
    colour_visible: bool = False
    has_det_labels: bool = False
    has_seg_masks: bool = False
    salient_source: str | None = None
    # class name -> {"ir": bool, "vis": bool}: which modality can see the class (synthetic data)
    modality_visibility: dict[str, dict[str, bool]] = field(default_factory=dict)
    extra: dict = field(default_factory=dict)

    @property
    def has_task_labels(self) -> bool:
        return self.has_det_labels or self.has_seg_masks

    def sees(self, class_name: str, modality: str, stem: str) -> bool:
        """Whether `modality` ("ir" or "vis") shows objects of `class_name` in image `stem`.

        From `modality_visibility` (the synthetic generator records it; keys "ir", "vis" or
        "vis_day" / "vis_night" by the stem's condition). True when nothing is recorded, as for
        every real dataset.
        """
        record = self.modality_visibility.get(class_name)
        if not record:
            return True
        if modality != "vis" or "vis" in record:
            return bool(record.get(modality, True))
        key = "vis_night" if condition_of(stem) == "night" else "vis_day"
        return bool(record.get(key, True))

    def save(self, root: Path) -> None:
        write_json(Path(root) / "manifest.json", asdict(self), sort_keys=True)

    @classmethod
    def load(cls, root: str | Path) -> Manifest:
        path = Path(root) / "manifest.json"
        if not path.exists():
            raise MissingInputError(
                f"{path}: no manifest; run `mmif prepare` to build the dataset first"
            )
        try:
            data = json.loads(path.read_text())
            known = {f for f in cls.__dataclass_fields__}
            return cls(**{k: v for k, v in data.items() if k in known})
        except (OSError, UnicodeDecodeError, ValueError, TypeError) as exc:
            raise InputError(
                f"{path}: not a readable manifest ({exc}); re-run `mmif prepare` to rebuild the dataset"
            ) from exc


@dataclass(frozen=True)
class Pair:
    """One registered image pair of a prepared split."""

    stem: str
    ir: Path
    vis: Path
    labels: Path | None = None
    mask: Path | None = None
    salient: Path | None = None


def split_dir(root: str | Path, split: str) -> Path:
    return Path(root) / split


def list_pairs(root: str | Path, split: str) -> list[Pair]:
    """All pairs of one split of a prepared dataset, sorted by stem."""
    d = split_dir(root, split)
    if not d.is_dir():
        return []
    irs = list_images(d / "ir")
    viss = list_images(d / "vis")
    missing = sorted(set(irs) ^ set(viss))
    if missing:
        raise ImageError(
            f"{d}: ir/ and vis/ do not hold the same stems (e.g. {missing[0]}); re-run `mmif prepare`"
        )
    masks = list_images(d / "masks") if (d / "masks").is_dir() else {}
    sal = list_images(d / "salient") if (d / "salient").is_dir() else {}
    lab_dir = d / "labels"
    pairs = []
    for stem in sorted(irs):
        lab = lab_dir / f"{stem}.txt"
        pairs.append(
            Pair(
                stem=stem,
                ir=irs[stem],
                vis=viss[stem],
                labels=lab if lab.exists() else None,
                mask=masks.get(stem),
                salient=sal.get(stem),
            )
        )
    return pairs


@dataclass(frozen=True)
class SourcePair:
    """One source pair given as two image files (outside or inside the prepared layout)."""

    stem: str
    ir: Path
    vis: Path


def pair_folders(ir_dir: Path, vis_dir: Path) -> list[SourcePair]:
    """Match the images of an infrared and a visible folder by stem (whatever the extensions);
    an image without a partner is an error naming it."""
    irs, viss = list_images(ir_dir), list_images(vis_dir)
    if not irs:
        raise ImageError(f"{ir_dir}: no images found (expected .png/.jpg/.bmp/.tif files)")
    only_ir = sorted(set(irs) - set(viss))
    only_vis = sorted(set(viss) - set(irs))
    if only_ir:
        raise ImageError(
            f"no visible partner for {irs[only_ir[0]]} in {vis_dir} ({len(only_ir)} unpaired); add it or remove the infrared image"
        )
    if only_vis:
        raise ImageError(
            f"no infrared partner for {viss[only_vis[0]]} in {ir_dir} ({len(only_vis)} unpaired); add it or remove the visible image"
        )
    return [SourcePair(s, irs[s], viss[s]) for s in sorted(irs)]
