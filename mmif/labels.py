"""The YOLO label format of the prepared layout and the masks drawn from its boxes.

One home for what every stage reads or writes in `<split>/labels/<stem>.txt`: a row is
`(cls, cx, cy, w, h)` normalised to the image size. `parse_yolo_line` is the one line parser,
`box_pixels` the one box-to-pixels rule (pixel centres inside the box), and `salient_from_boxes`
turns boxes into the 0/255 salient masks CoCoNet's training uses.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

import numpy as np

from mmif.errors import LabelError

#: one YOLO box: class id, then centre x, centre y, width, height, all normalised to the image
YoloRow = tuple[int, float, float, float, float]

#: the five fields of a YOLO label line, as error messages name them
YOLO_FIELDS = ("class id", "cx", "cy", "w", "h")


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


#: what to do about a bad label line, for hand-made or raw labels
FIX_LINE = "fix the line (YOLO 'cls cx cy w h', coordinates normalised)"


def read_yolo_file(
    path: str | Path, n_classes: int | None = None, fix: str = FIX_LINE
) -> list[YoloRow]:
    """Parse a YOLO label file (blank lines allowed). The one YOLO label reader of every stage.

    Every line goes through `parse_yolo_line`. With `n_classes` (the labels of a prepared
    dataset) a class id outside 0..n_classes-1 and a coordinate outside [0, 1] are errors too.
    Raises LabelError `<file>:<line>: <reason>; <fix>` (`fix` says what to do: the default for
    raw labels, "re-run `mmif prepare`" for prepared ones); an unreadable file is a LabelError
    without a line.
    """
    path = Path(path)
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as exc:
        raise LabelError(
            path, None, f"cannot read the label file ({exc})", "re-export it as plain text"
        ) from exc
    rows: list[YoloRow] = []
    for n, line in enumerate(text.splitlines(), start=1):
        if not line.split():
            continue
        try:
            row = parse_yolo_line(line)
        except ValueError as exc:
            raise LabelError(path, n, str(exc), fix) from None
        if n_classes is not None:
            if not row[0] < n_classes:
                raise LabelError(
                    path,
                    n,
                    f"class {row[0]} outside 0..{n_classes - 1} (manifest det_classes)",
                    fix,
                )
            if not all(0.0 <= v <= 1.0 for v in row[1:]):
                raise LabelError(path, n, "coordinates must be normalised to [0, 1]", fix)
        rows.append(row)
    return rows


def format_yolo(rows: Sequence[YoloRow]) -> str:
    """YOLO label text, one "cls cx cy w h" line per box (6 decimals)."""
    return "".join(f"{c} {cx:.6f} {cy:.6f} {w:.6f} {h:.6f}\n" for c, cx, cy, w, h in rows)


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
