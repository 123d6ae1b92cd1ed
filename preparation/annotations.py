"""Detection annotations: YOLO text files, Pascal VOC XML, class lists and salient masks.

All boxes leave here as YOLO rows `(cls, cx, cy, w, h)` normalised to the image size, the
format of `<split>/labels/<stem>.txt`. Range checks and clipping are done afterwards by
`preparation.validate.check_boxes`, once the image size is known for sure.
"""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

import numpy as np

from mmif.errors import DatasetError, LabelError, MissingInputError
from mmif.labels import YoloRow, read_yolo_file
from preparation.validate import Report


def read_yolo(path: Path, report: Report) -> list[YoloRow] | None:
    """Parse a YOLO label file (`mmif.labels.read_yolo_file`); None after an error, which goes
    to `report` as "bad-label"."""
    try:
        return read_yolo_file(path)
    except LabelError as exc:
        if exc.line is None:
            report.error("bad-label", path, f"{exc.reason}; re-export it as plain text")
        else:
            report.error("bad-label", path, f"line {exc.line}: {exc.reason}")
        return None


def read_voc(
    path: Path,
    classes: Sequence[str],
    image_size: tuple[int, int],
    report: Report,
    unknown: Literal["error", "ignore"] = "error",
) -> list[YoloRow] | None:
    """Convert a Pascal VOC XML file to normalised YOLO rows; None after an error.

    VOC corners are 1-based inclusive pixel indices, so the box covers pixel edges
    [xmin - 1, xmax] x [ymin - 1, ymax]. Class names match `classes` case-insensitively;
    an unknown name is an error, or skipped when `unknown="ignore"`. The image size, not the
    XML <size>, normalises the boxes (a differing <size> is a warning).
    """
    try:
        tree = ET.parse(path)
    except (ET.ParseError, OSError) as exc:
        report.error("bad-label", path, f"not valid VOC XML ({exc}); re-export the annotation")
        return None
    root = tree.getroot()
    width, height = image_size
    xml_w, xml_h = (
        _int_or_none(root.findtext("size/width")),
        _int_or_none(root.findtext("size/height")),
    )
    if xml_w and xml_h and (xml_w, xml_h) != (width, height):
        report.warning(
            "label-size",
            path,
            f"<size> says {xml_w}x{xml_h} but the image is {width}x{height}; boxes are taken in image pixels",
        )
    index = {name.lower(): i for i, name in enumerate(classes)}
    rows: list[YoloRow] = []
    skipped: set[str] = set()
    for k, obj in enumerate(root.iter("object"), start=1):
        name = (obj.findtext("name") or "").strip()
        if name.lower() not in index:
            if unknown == "ignore":
                skipped.add(name)
                continue
            report.error(
                "bad-label",
                path,
                f"object {k}: class '{name}' is not one of {list(classes)}; add it to dataset.det_classes "
                "or set dataset.unknown_classes: ignore",
            )
            return None
        try:
            x_min, y_min, x_max, y_max = (
                float(obj.findtext(f"bndbox/{t}") or "") for t in ("xmin", "ymin", "xmax", "ymax")
            )
        except ValueError:
            report.error(
                "bad-label", path, f"object {k} ('{name}'): missing or non-numeric <bndbox> corner"
            )
            return None
        if not all(math.isfinite(v) for v in (x_min, y_min, x_max, y_max)):
            report.error(
                "bad-label", path, f"object {k} ('{name}'): <bndbox> corner is not a finite number"
            )
            return None
        x0, y0 = x_min - 1.0, y_min - 1.0
        if x_max <= x0 or y_max <= y0:
            report.error(
                "bad-label",
                path,
                f"object {k} ('{name}'): empty box ({x_min}, {y_min}, {x_max}, {y_max})",
            )
            return None
        rows.append(
            (
                index[name.lower()],
                (x0 + x_max) / 2 / width,
                (y0 + y_max) / 2 / height,
                (x_max - x0) / width,
                (y_max - y0) / height,
            )
        )
    if skipped:
        report.warning(
            "unknown-class", path, f"objects of unlisted class(es) {sorted(skipped)} skipped"
        )
    return rows


def _int_or_none(text: str | None) -> int | None:
    try:
        return int(float(text)) if text is not None else None
    except ValueError:
        return None


def read_class_list(path: str | Path) -> list[str]:
    """Class names, one per line (blank lines and '#' comments skipped); YOLO's classes.txt format."""
    path = Path(path)
    if not path.is_file():
        raise MissingInputError(
            f"{path}: class list not found; give a file with one class name per line"
        )
    names = [line.split("#", 1)[0].strip() for line in path.read_text().splitlines()]
    names = [n for n in names if n]
    if not names:
        raise DatasetError(f"{path}: class list is empty; write one class name per line")
    return names


def salient_ids(classes: Sequence[str], salient_classes: Sequence[str]) -> list[int]:
    """Indices of `classes` whose name is one of `salient_classes` (case-insensitive)."""
    wanted = {c.lower() for c in salient_classes}
    return [i for i, name in enumerate(classes) if name.lower() in wanted]


def salient_from_mask(mask: np.ndarray, ids: Sequence[int]) -> np.ndarray:
    """0/255 uint8 mask of the pixels whose class id is in `ids`."""
    return np.where(np.isin(mask, list(ids)), 255, 0).astype(np.uint8)
