"""Detection annotations: YOLO text files, Pascal VOC XML, class lists and salient masks.

All boxes leave here as YOLO rows `(cls, cx, cy, w, h)` normalised to the image size, the
format of `<split>/labels/<stem>.txt`. Range checks and clipping are done afterwards by
`mmif.data.validate.check_boxes`, once the image size is known for sure.
"""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

import numpy as np

from mmif.data.validate import DatasetError, Report, YoloRow
from mmif.errors import MissingInputError

#: the five fields of a YOLO label line, as error messages name them
YOLO_FIELDS = ("class id", "cx", "cy", "w", "h")


class LabelError(DatasetError):
    """A YOLO label file cannot be parsed; the message is `<file>:<line>: field <n> (<name>) ...`."""


def parse_yolo_line(line: str) -> YoloRow:
    """Parse one "cls cx cy w h" line. The one YOLO line parser of every stage.

    Raises ValueError naming the field (number and name) when the line does not have five
    values, a value is not a number or not finite (nan, inf), or the class id is not a
    non-negative integer. Ranges (class < number of classes, coordinates in [0, 1]) are the
    caller's checks.
    """
    parts = line.split()
    if len(parts) != 5:
        raise ValueError(
            f"expected 5 values 'cls cx cy w h', got {len(parts)}; "
            "segment polygons and confidence columns are not accepted"
        )
    values = []
    for i, (name, text) in enumerate(zip(YOLO_FIELDS, parts, strict=True), start=1):
        try:
            value = float(text)
        except ValueError:
            raise ValueError(f"field {i} ({name}) '{text}' is not a number") from None
        if not math.isfinite(value):
            raise ValueError(f"field {i} ({name}) '{text}' is not a finite number")
        values.append(value)
    if values[0] != int(values[0]) or values[0] < 0:
        raise ValueError(f"field 1 (class id) '{parts[0]}' is not a non-negative integer")
    return (int(values[0]), values[1], values[2], values[3], values[4])


def read_yolo_file(path: str | Path) -> list[YoloRow]:
    """Parse a YOLO label file (blank lines allowed); LabelError names the file, line and field."""
    path = Path(path)
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as exc:
        raise LabelError(
            f"{path}: cannot read the label file ({exc}); re-export it as plain text"
        ) from exc
    rows: list[YoloRow] = []
    for n, line in enumerate(text.splitlines(), start=1):
        if not line.split():
            continue
        try:
            rows.append(parse_yolo_line(line))
        except ValueError as exc:
            raise LabelError(
                f"{path}:{n}: {exc}; fix the line (YOLO 'cls cx cy w h', coordinates normalised)"
            ) from None
    return rows


def read_yolo(path: Path, report: Report) -> list[YoloRow] | None:
    """Parse a YOLO label file ("cls cx cy w h" per line, blank lines allowed); None after an error."""
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as exc:
        report.error(
            "bad-label", path, f"cannot read the label file ({exc}); re-export it as plain text"
        )
        return None
    rows: list[YoloRow] = []
    for n, line in enumerate(text.splitlines(), start=1):
        if not line.split():
            continue
        try:
            rows.append(parse_yolo_line(line))
        except ValueError as exc:
            report.error("bad-label", path, f"line {n}: {exc}")
            return None
    return rows


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


def format_yolo(rows: Sequence[YoloRow]) -> str:
    """YOLO label text, one "cls cx cy w h" line per box (6 decimals)."""
    return "".join(f"{c} {cx:.6f} {cy:.6f} {w:.6f} {h:.6f}\n" for c, cx, cy, w, h in rows)


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


def box_pixels(row: YoloRow, size: tuple[int, int]) -> tuple[int, int, int, int]:
    """(x0, y0, x1, y1) pixel bounds of a YOLO row (pixel centres inside the box), clipped."""
    width, height = size
    _, cx, cy, w, h = row
    x0 = int(np.clip(np.round((cx - w / 2) * width), 0, width))
    x1 = int(np.clip(np.round((cx + w / 2) * width), 0, width))
    y0 = int(np.clip(np.round((cy - h / 2) * height), 0, height))
    y1 = int(np.clip(np.round((cy + h / 2) * height), 0, height))
    return x0, y0, x1, y1


def salient_from_boxes(
    rows: Sequence[YoloRow],
    ids: Sequence[int],
    size: tuple[int, int],
    ir: np.ndarray | None = None,
    mode: Literal["refined", "whole"] = "refined",
) -> np.ndarray:
    """0/255 uint8 salient mask from the boxes of classes `ids`.

    mode "whole" (or no infrared image): every box filled. mode "refined": inside each box,
    only the warm part of the infrared image `ir` (H x W uint8), see `warm_part_of_box`; a box
    whose target does not stand out from its surroundings keeps the whole box.
    """
    width, height = size
    out = np.zeros((height, width), dtype=np.uint8)
    keep = set(ids)
    boxes = [box_pixels(r, size) for r in rows if r[0] in keep]
    boxes = [b for b in boxes if b[2] > b[0] and b[3] > b[1]]
    if mode == "whole" or ir is None:
        for x0, y0, x1, y1 in boxes:
            out[y0:y1, x0:x1] = 255
        return out
    if ir.ndim == 3:
        ir = ir.mean(axis=2)
    inside_any = np.zeros((height, width), dtype=bool)
    for x0, y0, x1, y1 in boxes:
        inside_any[y0:y1, x0:x1] = True
    for box in boxes:
        x0, y0, x1, y1 = box
        part = warm_part_of_box(ir, box, inside_any)
        out[y0:y1, x0:x1] |= np.where(part, 255, 0).astype(np.uint8)
    return out


#: a box's target must be this many grey levels (of 255) above its surroundings to be refined
MIN_TARGET_CONTRAST = 20.0
#: a refined mask smaller than this share of its box is distrusted (the whole box is kept)
MIN_REFINED_SHARE = 0.08


def warm_part_of_box(
    ir: np.ndarray, box: tuple[int, int, int, int], other_boxes: np.ndarray | None = None
) -> np.ndarray:
    """Boolean mask (box-sized) of the pixels of a target box that are warm against the box's
    local background.

    Background: the median infrared level in a ring around the box (a quarter of its smaller
    side wide, at least 3 pixels, leaving out pixels of other boxes, `other_boxes`, H x W bool).
    Target level: the 90th percentile inside the box. Pixels above the midpoint of the two are
    the target; the mask is then cleaned (3x3 closing, holes filled, components smaller than 2%
    of the box dropped). A target less than MIN_TARGET_CONTRAST levels above its background, or
    a mask under MIN_REFINED_SHARE of the box, gives the whole box (the fallback).
    """
    from scipy import ndimage

    x0, y0, x1, y1 = box
    h, w = ir.shape[:2]
    crop = ir[y0:y1, x0:x1].astype(np.float32)
    whole = np.ones(crop.shape, dtype=bool)
    if crop.size < 4:
        return whole
    margin = max(3, round(0.25 * min(x1 - x0, y1 - y0)))
    rx0, ry0, rx1, ry1 = (
        max(x0 - margin, 0),
        max(y0 - margin, 0),
        min(x1 + margin, w),
        min(y1 + margin, h),
    )
    ring = np.ones((ry1 - ry0, rx1 - rx0), dtype=bool)
    ring[y0 - ry0 : y1 - ry0, x0 - rx0 : x1 - rx0] = False
    if other_boxes is not None:
        ring &= ~other_boxes[ry0:ry1, rx0:rx1]
    if ring.sum() < 8:
        return whole
    background = float(np.median(ir[ry0:ry1, rx0:rx1][ring]))
    target = float(np.percentile(crop, 90))
    if target - background < MIN_TARGET_CONTRAST:
        return whole
    part = crop > (background + target) / 2
    part = ndimage.binary_closing(part, structure=np.ones((3, 3), bool), border_value=0) | part
    part = ndimage.binary_fill_holes(part)
    labels, n = ndimage.label(part)
    if n:
        sizes = ndimage.sum_labels(part, labels, index=np.arange(1, n + 1))
        small = np.flatnonzero(sizes < 0.02 * part.size) + 1
        part[np.isin(labels, small)] = False
    if part.mean() < MIN_REFINED_SHARE:
        return whole
    return part
