"""Checks on a dataset as released upstream, before anything is written.

Every check reports to a `Report`. In the normal (strict) mode the first error raises
`DatasetError` at once; since `prepare` writes inside `mmif.io.atomic_dir`, nothing is left on
disk. In check mode (`Report(collect=True)`) every problem is recorded and the caller gets the
whole list; nothing is written either way.

What is an error and what is a warning:

| problem                                   | handling                                                |
|-------------------------------------------|---------------------------------------------------------|
| image without a partner of the other kind | error                                                   |
| two files with one stem in a folder       | error                                                   |
| file name with a control character or     | error (`mmif.io.stem_problem`, the rule of every        |
| undecodable bytes                         | command; spaces and any script are accepted)            |
| unreadable / truncated / empty image      | error                                                   |
| pair (or mask) sizes differ               | error; resized to the infrared size only when asked     |
| 16-bit image                              | warning; scaled by `mmif.io.scale_16bit_to_8bit`        |
| RGBA, palette, CMYK, 1-bit image          | warning; converted to RGB (grey stays grey)             |
| colour infrared                           | warning; reduced to BT.601 luminance                    |
| malformed label line / bad class id       | error (names the file and line)                         |
| box partly outside the image              | warning; clipped (silently within half a pixel)         |
| box wholly outside the image              | warning; dropped                                        |
| pair without a label file / mask          | error (an image with no objects needs an empty .txt)    |
| label file or mask without an image       | warning; ignored                                        |
| non-image file in an image folder         | warning; ignored (releases ship notes, thumbnails, ...) |
| no pairs at all                           | error                                                   |

Non-image files are a warning, not an error, because upstream archives routinely carry
`classes.txt`, `Thumbs.db` or notebooks next to the images; hidden files are skipped silently.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
from PIL import Image, UnidentifiedImageError

from mmif.errors import DatasetError
from mmif.io import (
    IMAGE_EXTENSIONS,
    ImageError,
    is_image_file,
    read_image,
    rgb_to_grey_uint8,
    stem_problem,
)
from mmif.labels import YoloRow
from mmif.layout import IGNORE_INDEX

log = logging.getLogger(__name__)

Severity = Literal["error", "warning"]

# warnings of one kind shown in the log before the rest are only counted
_SHOWN_PER_KIND = 5
# channel differences up to this are JPEG noise on a grey image stored as RGB
_GREY_TOLERANCE = 2
_SIXTEEN_BIT_MODES = ("I;16", "I;16B", "I;16L", "I")
_CONVERTED_MODES = ("RGBA", "P", "PA", "LA", "CMYK", "YCbCr", "1", "La", "RGBa", "LAB", "HSV")


@dataclass(frozen=True)
class Problem:
    """One finding about one file. `kind` is a short code such as "missing-partner"."""

    severity: Severity
    kind: str
    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.severity}: {self.path}: {self.message}"


class Report:
    """Collects problems; raises on the first error unless `collect` is set.

    Warnings are logged (the first few of each kind, then a count at `log_summary`) unless
    collecting, where the caller shows the list itself.
    """

    def __init__(self, collect: bool = False) -> None:
        self.collect = collect
        self.problems: list[Problem] = []
        # warnings per kind, updated live (the manifest records it)
        self.warning_kinds: dict[str, int] = {}  # a plain dict: dataclasses.asdict mangles Counters

    def error(self, kind: str, path: str | Path, message: str) -> None:
        problem = Problem("error", kind, str(path), message)
        self.problems.append(problem)
        if not self.collect:
            raise DatasetError(f"{path}: {message}")

    def warning(self, kind: str, path: str | Path, message: str, logged: bool = False) -> None:
        """Record a warning; `logged` says a library call has already logged it."""
        self.problems.append(Problem("warning", kind, str(path), message))
        self.warning_kinds[kind] = self.warning_kinds.get(kind, 0) + 1
        if not self.collect and not logged and self.warning_kinds[kind] <= _SHOWN_PER_KIND:
            log.warning("%s: %s", path, message)

    @property
    def errors(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == "error"]

    @property
    def warnings(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == "warning"]

    def warning_counts(self) -> dict[str, int]:
        return dict(sorted(self.warning_kinds.items()))

    def log_summary(self) -> None:
        for kind, n in sorted(self.warning_kinds.items()):
            if n > _SHOWN_PER_KIND and not self.collect:
                log.warning(
                    "%d more '%s' warnings not shown (run with --check to list them)",
                    n - _SHOWN_PER_KIND,
                    kind,
                )


# ---------------------------------------------------------------------------------------------
# Folders and pairing


def list_image_files(folder: Path, report: Report) -> dict[str, Path]:
    """Map stem -> image file in `folder` (non-recursive), matching by stem whatever the extension.

    Non-image files are ignored with one warning per folder; sub-folders and hidden files are
    skipped silently; two images with one stem, and a stem that `mmif.io.stem_problem` refuses
    (the one rule of every command), are errors.
    """
    out: dict[str, Path] = {}
    ignored: list[str] = []
    for p in sorted(folder.iterdir()):
        if p.name.startswith(".") or p.is_dir():
            continue
        if not is_image_file(p):
            ignored.append(p.name)
            continue
        problem = stem_problem(p.stem)
        if problem:
            report.error("bad-stem", p.parent / repr(p.name), problem)
            continue
        if p.stem in out:
            report.error(
                "duplicate-stem",
                p,
                f"another image has the stem '{p.stem}' ({out[p.stem].name}); pairs are matched by stem, keep one of them",
            )
            continue
        out[p.stem] = p
    if ignored:
        example = ", ".join(ignored[:3]) + (", ..." if len(ignored) > 3 else "")
        report.warning(
            "non-image",
            folder,
            f"ignored {len(ignored)} non-image file(s) ({example}); only {', '.join(IMAGE_EXTENSIONS)} are read",
        )
    return out


def match_pairs(
    ir_files: dict[str, Path],
    vis_files: dict[str, Path],
    ir_dir: Path,
    vis_dir: Path,
    report: Report,
) -> list[str]:
    """Stems present in both folders, sorted; a file without its partner is an error."""
    for stem in sorted(set(ir_files) - set(vis_files)):
        report.error(
            "missing-partner",
            ir_files[stem],
            f"no visible partner named {stem}.* in {vis_dir}; add it or remove the infrared image",
        )
    for stem in sorted(set(vis_files) - set(ir_files)):
        report.error(
            "missing-partner",
            vis_files[stem],
            f"no infrared partner named {stem}.* in {ir_dir}; add it or remove the visible image",
        )
    return sorted(set(ir_files) & set(vis_files))


def match_annotations(
    stems: Sequence[str],
    files: dict[str, Path],
    folder: Path,
    what: str,
    fix: str,
    report: Report,
    warn_orphans: bool = True,
) -> dict[str, Path]:
    """Annotation file per pair stem; a pair without one is an error, an orphan a warning."""
    out = {}
    for stem in stems:
        if stem in files:
            out[stem] = files[stem]
        else:
            report.error(
                "missing-annotation",
                folder / stem,
                f"no {what} for pair '{stem}' in {folder}; {fix}",
            )
    orphans = sorted(set(files) - set(stems))
    if orphans and warn_orphans:
        report.warning(
            "orphan-annotation",
            folder,
            f"{len(orphans)} {what}(s) without an image pair ignored (e.g. {files[orphans[0]].name})",
        )
    return out


def list_files(folder: Path, suffix: str) -> dict[str, Path]:
    """Map stem -> file for files with `suffix` (case-insensitive) in `folder`."""
    return {
        p.stem: p
        for p in sorted(folder.iterdir())
        if p.is_file() and not p.name.startswith(".") and p.suffix.lower() == suffix
    }


# ---------------------------------------------------------------------------------------------
# Images


def read_source_image(
    path: Path, role: Literal["infrared", "visible"], report: Report
) -> np.ndarray | None:
    """Read one source image as uint8, reporting conversions; None after a (collected) error.

    Infrared is returned grey (H x W). Visible keeps colour (H x W x 3) unless all channels are
    equal, in which case it is grey.
    """
    try:
        with Image.open(path) as im:
            mode = im.mode
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        report.error(
            "unreadable", path, f"not a readable image ({exc}); re-export or remove the file"
        )
        return None
    try:
        arr = read_image(path, mode="auto")
    except ImageError as exc:
        report.error("unreadable", path, str(exc).removeprefix(f"{path}: "))
        return None
    if mode in _SIXTEEN_BIT_MODES:
        report.warning(
            "16-bit",
            path,
            f"16-bit {role} ({mode}) scaled to 8 bits by its own min-max range (mmif.io.scale_16bit_to_8bit)",
            logged=True,  # read_image logs it
        )
    elif mode in _CONVERTED_MODES:
        report.warning(
            "converted",
            path,
            f"{mode} {role} image converted to {'grey' if arr.ndim == 2 else 'RGB'}",
        )
    if role == "infrared" and arr.ndim == 3:
        # a strided look is enough to tell a colour image from JPEG noise on grey
        if _channel_spread(arr[::4, ::4]) > _GREY_TOLERANCE:
            report.warning(
                "colour-infrared", path, "infrared image has colour; reduced to BT.601 luminance"
            )
        arr = rgb_to_grey_uint8(arr)
    return arr


def _channel_spread(arr: np.ndarray) -> int:
    a = arr.astype(np.int16)
    return int(max(np.abs(a[..., 0] - a[..., 1]).max(), np.abs(a[..., 0] - a[..., 2]).max()))


def read_mask(
    path: Path,
    n_classes: int,
    report: Report,
    palette: Sequence[tuple[int, int, int]] | None = None,
) -> np.ndarray | None:
    """Read a class-id mask (H x W uint8; ids < n_classes or 255 = ignore); None after an error.

    Palette PNGs keep their indices (they are the class ids). A colour mask is mapped through
    `palette` (colour i -> class i) when one is given and is an error otherwise.
    """
    try:
        with Image.open(path) as im:
            im.load()
            mode = im.mode
            arr = np.asarray(im)
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        report.error(
            "unreadable", path, f"not a readable mask ({exc}); re-export or remove the file"
        )
        return None
    if arr.ndim == 3 and arr.shape[2] == 2:  # LA: grey ids plus alpha
        arr = arr[..., 0]
    if arr.ndim == 3:
        rgb = arr[..., :3]
        if _channel_spread(rgb) == 0:
            arr = rgb[..., 0]
        elif palette is not None:
            mapped = _map_palette(rgb, palette)
            if mapped is None:
                report.error(
                    "bad-mask",
                    path,
                    "colour mask holds colours outside the class palette; use the class-id masks",
                )
                return None
            arr = mapped
        else:
            report.error(
                "bad-mask",
                path,
                f"{mode} mask: expected one channel of class ids; use the class-id label PNGs",
            )
            return None
    if arr.dtype != np.uint8:
        if arr.size and (arr.min() < 0 or arr.max() > 255):
            report.error(
                "bad-mask", path, f"mask values up to {arr.max()} do not fit class ids 0..255"
            )
            return None
        arr = arr.astype(np.uint8)
    values = np.unique(arr)
    bad = [int(v) for v in values if v >= n_classes and v != IGNORE_INDEX]
    if bad:
        report.error(
            "bad-mask",
            path,
            f"class id(s) {bad[:5]} outside the {n_classes} segmentation classes (255 = ignore); "
            "check the mask or set dataset.seg_classes",
        )
        return None
    return np.ascontiguousarray(arr)


def _map_palette(rgb: np.ndarray, palette: Sequence[tuple[int, int, int]]) -> np.ndarray | None:
    code = (rgb[..., 0].astype(np.int32) << 16) | (rgb[..., 1].astype(np.int32) << 8) | rgb[..., 2]
    lut = {(r << 16) | (g << 8) | b: i for i, (r, g, b) in enumerate(palette)}
    out = np.full(code.shape, 255, dtype=np.uint8)
    for value in np.unique(code):
        if int(value) not in lut:
            return None
        out[code == value] = lut[int(value)]
    return out


def resize_image(arr: np.ndarray, size: tuple[int, int], nearest: bool = False) -> np.ndarray:
    """Resize a uint8 image to size (width, height); bilinear (antialiased) or nearest for ids."""
    im = Image.fromarray(arr)
    return np.asarray(im.resize(size, Image.NEAREST if nearest else Image.BILINEAR)).copy()


def size_of(arr: np.ndarray) -> tuple[int, int]:
    """(width, height) of an H x W (x C) array."""
    return int(arr.shape[1]), int(arr.shape[0])


def check_pair_size(
    ir: np.ndarray, vis: np.ndarray, ir_path: Path, vis_path: Path, resize: bool, report: Report
) -> np.ndarray | None:
    """The visible image at the infrared size; None after a (collected) size error."""
    if size_of(ir) == size_of(vis):
        return vis
    msg = f"size {_wh(vis)} differs from its infrared partner {ir_path.name} ({_wh(ir)})"
    if resize:
        report.warning("resized", vis_path, msg + "; resized to the infrared size")
        return resize_image(vis, size_of(ir))
    report.error(
        "size-mismatch",
        vis_path,
        msg + "; register or crop the pair, or set dataset.resize_mismatched: true to resize it",
    )
    return None


def check_mask_size(
    mask: np.ndarray, ir: np.ndarray, path: Path, resize: bool, report: Report
) -> np.ndarray | None:
    if size_of(mask) == size_of(ir):
        return mask
    msg = f"mask size {_wh(mask)} differs from its image pair ({_wh(ir)})"
    if resize:
        report.warning("resized", path, msg + "; resized (nearest) to the infrared size")
        return resize_image(mask, size_of(ir), nearest=True)
    report.error(
        "size-mismatch", path, msg + "; fix the mask or set dataset.resize_mismatched: true"
    )
    return None


def _wh(arr: np.ndarray) -> str:
    w, h = size_of(arr)
    return f"{w}x{h}"


# ---------------------------------------------------------------------------------------------
# Boxes


def check_boxes(
    rows: Sequence[YoloRow], n_classes: int, size: tuple[int, int], path: Path, report: Report
) -> list[YoloRow] | None:
    """Validate normalised YOLO rows against the class count and the image; clip what sticks out.

    A box sticking out by at most half a pixel (rounding in the release) is clipped silently,
    more with a warning; a box wholly outside is dropped with a warning. Class ids outside
    0..n_classes-1 and boxes of non-positive size are errors. Returns None after an error.
    """
    width, height = size
    out: list[YoloRow] = []
    tol_x, tol_y = 0.5 / width, 0.5 / height
    clipped = dropped = 0
    for i, (cls, cx, cy, w, h) in enumerate(rows, start=1):
        if not 0 <= cls < n_classes:
            report.error(
                "bad-label",
                path,
                f"box {i}: class id {cls} outside 0..{n_classes - 1}; fix the label or set dataset.det_classes",
            )
            return None
        if not (w > 0 and h > 0) or not all(np.isfinite((cx, cy, w, h))):
            report.error(
                "bad-label",
                path,
                f"box {i}: width and height must be positive numbers, got {w}, {h}",
            )
            return None
        x0, y0, x1, y1 = cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2
        outside = x0 < -tol_x or y0 < -tol_y or x1 > 1 + tol_x or y1 > 1 + tol_y
        x0, y0, x1, y1 = max(x0, 0.0), max(y0, 0.0), min(x1, 1.0), min(y1, 1.0)
        if x1 <= x0 or y1 <= y0:
            dropped += 1
            continue
        clipped += outside
        out.append((cls, (x0 + x1) / 2, (y0 + y1) / 2, x1 - x0, y1 - y0))
    if dropped:
        report.warning("box-outside", path, f"{dropped} box(es) wholly outside the image dropped")
    if clipped:
        report.warning(
            "box-clipped", path, f"{clipped} box(es) extending outside the image clipped to it"
        )
    return out


def summarise(problems: Sequence[Problem]) -> dict[str, dict[str, int]]:
    """Counts per severity and kind, e.g. {"error": {"missing-partner": 2}, "warning": {...}}."""
    out: dict[str, dict[str, int]] = defaultdict(dict)
    for p in problems:
        out[p.severity][p.kind] = out[p.severity].get(p.kind, 0) + 1
    return dict(out)
