"""Write samples into the canonical prepared layout (`mmif.layout`), atomically.

Every adapter and the synthetic generator end here: they yield `Sample`s and
`write_prepared` builds `<split>/{ir,vis,labels,masks,salient}` plus `manifest.json` under a
temporary name, moving it into place only when every sample was written. Any exception (a bad
sample, a failing reader upstream, Ctrl-C) leaves the output folder as it was.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
from PIL import Image

from mmif.errors import DatasetError
from mmif.io import atomic_dir, stem_problem
from mmif.labels import format_yolo
from mmif.layout import IGNORE_INDEX, SPLITS, Manifest
from mmif.logging_utils import progress_bar
from preparation.validate import YoloRow

log = logging.getLogger(__name__)


@dataclass
class Sample:
    """One registered pair and its optional annotations, ready to write.

    ir: H x W uint8. vis: H x W or H x W x 3 uint8, same H x W.
    labels: YOLO rows (cls, cx, cy, w, h) normalised to [0, 1], or None when the dataset has no
    boxes (an empty list writes an empty file: an image with no objects).
    mask: H x W uint8 class ids (255 = ignore) or None. salient: H x W uint8 or bool, non-zero = salient (written as 0/255), or None.
    """

    split: str
    stem: str
    ir: np.ndarray
    vis: np.ndarray
    labels: Sequence[YoloRow] | None = None
    mask: np.ndarray | None = None
    salient: np.ndarray | None = None


def write_prepared(
    out_dir: str | Path,
    samples: Iterable[Sample],
    manifest: Manifest,
    *,
    total: int | None = None,
    compress_level: int = 1,
    progress: bool = True,
    inputs: Sequence[str | Path | None] = (),
    overwrite: bool = False,
) -> Manifest:
    """Write `samples` and `manifest.json` to `out_dir` (replaced as a whole on success).

    The manifest's name, provenance, class lists, salient_source and extra are kept; the fields
    that follow from the data (splits, image_sizes, colour_visible, has_det_labels,
    has_seg_masks, extra["boxes_per_class"]) are filled in here. Returns the written manifest.
    `inputs` (the dataset's source folders) and `overwrite` go to `mmif.io.atomic_dir`: the
    output may not be one of them, and a non-empty folder not written by mmif is only replaced
    with `overwrite`.
    Raises DatasetError (a ValueError) naming the sample when one is inconsistent, and when there
    is none.
    """
    out_dir = Path(out_dir)
    splits: Counter[str] = Counter()
    sizes: Counter[str] = Counter()
    boxes: Counter[int] = Counter()
    seen: set[tuple[str, str]] = set()
    colour = has_labels = has_masks = has_salient = False
    with atomic_dir(out_dir, inputs=inputs, overwrite=overwrite, kind="prepared dataset") as tmp:
        made: set[Path] = set()
        for s in progress_bar(
            samples, total=total, desc=f"writing {out_dir.name}", unit="pair", disable=not progress
        ):
            _check_sample(s, manifest, seen)
            d = tmp / s.split
            h, w = s.ir.shape
            items: list[tuple[str, np.ndarray]] = [("ir", s.ir), ("vis", s.vis)]
            if s.mask is not None:
                items.append(("masks", s.mask))
                has_masks = True
            if s.salient is not None:
                items.append(("salient", np.where(s.salient > 0, 255, 0).astype(np.uint8)))
                has_salient = True
            for sub, arr in items:
                _save_png(d / sub, s.stem, arr, compress_level, made)
            if s.labels is not None:
                lab_dir = d / "labels"
                if lab_dir not in made:
                    lab_dir.mkdir(parents=True, exist_ok=True)
                    made.add(lab_dir)
                (lab_dir / f"{s.stem}.txt").write_text(format_yolo(s.labels))
                boxes.update(int(r[0]) for r in s.labels)
                has_labels = True
            colour = colour or s.vis.ndim == 3
            splits[s.split] += 1
            sizes[f"{w}x{h}"] += 1
        if not splits:
            raise DatasetError(f"{out_dir}: no samples to write; the dataset is empty")
        extra = dict(manifest.extra)
        if has_labels:
            names = manifest.det_classes or [str(c) for c in sorted(boxes)]
            extra["boxes_per_class"] = {
                (names[c] if c < len(names) else str(c)): int(boxes.get(c, 0))
                for c in range(max(len(names), 1))
            }
        written = replace(
            manifest,
            splits={k: splits[k] for k in SPLITS if splits[k]},
            image_sizes=dict(sorted(sizes.items())),
            colour_visible=colour,
            has_det_labels=has_labels,
            has_seg_masks=has_masks,
            salient_source=manifest.salient_source if has_salient else None,
            extra=extra,
        )
        written.save(tmp)
    log.info(
        "wrote %d pairs (%s) to %s",
        sum(splits.values()),
        ", ".join(f"{k} {v}" for k, v in written.splits.items()),
        out_dir,
    )
    return written


def _save_png(
    folder: Path, stem: str, arr: np.ndarray, compress_level: int, made: set[Path]
) -> None:
    if folder not in made:
        folder.mkdir(parents=True, exist_ok=True)
        made.add(folder)
    Image.fromarray(arr).save(folder / f"{stem}.png", format="PNG", compress_level=compress_level)


def _check_sample(s: Sample, manifest: Manifest, seen: set[tuple[str, str]]) -> None:
    where = f"sample {s.split}/{s.stem}"
    if s.split not in SPLITS:
        raise DatasetError(f"{where}: split must be one of {', '.join(SPLITS)}")
    problem = stem_problem(s.stem) or (
        "a stem must not be empty, start with '.' or contain '/'"
        if not s.stem or s.stem.startswith(".") or "/" in s.stem or "\\" in s.stem
        else None
    )
    if problem:
        raise DatasetError(f"sample {s.split}/{s.stem!r}: {problem}")
    if (s.split, s.stem) in seen:
        raise DatasetError(f"{where}: stem written twice in this split; stems must be unique")
    seen.add((s.split, s.stem))
    if s.ir.dtype != np.uint8 or s.ir.ndim != 2:
        raise DatasetError(
            f"{where}: ir must be an H x W uint8 array, got {s.ir.dtype} {s.ir.shape}"
        )
    if s.vis.dtype != np.uint8 or not (
        s.vis.ndim == 2 or (s.vis.ndim == 3 and s.vis.shape[2] == 3)
    ):
        raise DatasetError(
            f"{where}: vis must be H x W or H x W x 3 uint8, got {s.vis.dtype} {s.vis.shape}"
        )
    if s.vis.shape[:2] != s.ir.shape:
        raise DatasetError(
            f"{where}: vis is {s.vis.shape[:2]} but ir is {s.ir.shape} (H, W); register or resize the pair"
        )
    for name, arr in (("mask", s.mask), ("salient", s.salient)):
        if arr is None:
            continue
        if arr.ndim != 2 or arr.shape != s.ir.shape:
            raise DatasetError(
                f"{where}: {name} must be H x W like ir {s.ir.shape}, got {arr.shape}"
            )
        if arr.dtype not in (np.uint8, np.bool_):
            raise DatasetError(f"{where}: {name} must be uint8 (or bool), got {arr.dtype}")
    if s.mask is not None and manifest.seg_classes:
        bad = sorted(
            set(np.unique(s.mask).tolist()) - set(range(len(manifest.seg_classes))) - {IGNORE_INDEX}
        )
        if bad:
            raise DatasetError(
                f"{where}: mask ids {bad[:5]} outside the {len(manifest.seg_classes)} seg_classes"
            )
    if s.labels is not None:
        n = len(manifest.det_classes)
        for i, row in enumerate(s.labels, start=1):
            if len(row) != 5:
                raise DatasetError(f"{where}: box {i} must be (cls, cx, cy, w, h)")
            cls, *coords = row
            if n and not 0 <= int(cls) < n:
                raise DatasetError(f"{where}: box {i} class {cls} outside the {n} det_classes")
            if not all(0.0 <= v <= 1.0 for v in coords):
                raise DatasetError(
                    f"{where}: box {i} coordinates {coords} not normalised to [0, 1]"
                )
