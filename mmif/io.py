"""Image input/output with validation and atomic writes.

Images are read as uint8 numpy arrays (H x W for grey, H x W x 3 for colour) and converted to
float tensors in [0, 1] (B x C x H x W) at the library boundary. Every write goes to a temporary
name next to the target and is renamed into place, so an interrupted run never leaves a partial
file or folder behind.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

log = logging.getLogger(__name__)

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff")


class ImageError(ValueError):
    """An input image cannot be used; the message names the file and the fix."""


def is_image_file(path: Path) -> bool:
    return (
        path.is_file() and path.suffix.lower() in IMAGE_EXTENSIONS and not path.name.startswith(".")
    )


def scale_16bit_to_8bit(array: np.ndarray) -> np.ndarray:
    """Scale a 16-bit (or 32-bit integer) image to 8 bits by its own min-max range.

    Radiometric infrared is stored as raw counts whose useful range is a small part of 0..65535;
    a fixed division by 257 would leave it nearly black, so each image is stretched linearly
    from its minimum to its maximum (a constant image maps to 0).
    """
    a = array.astype(np.float64)
    lo, hi = float(a.min()), float(a.max())
    if hi <= lo:
        return np.zeros(array.shape, dtype=np.uint8)
    return np.clip(np.rint((a - lo) * 255.0 / (hi - lo)), 0, 255).astype(np.uint8)


def read_image(path: str | Path, mode: str = "auto") -> np.ndarray:
    """Read an image file as uint8.

    mode: "auto" keeps grey as H x W and colour as H x W x 3; "grey" returns H x W (colour is
    reduced to BT.601 luminance); "rgb" returns H x W x 3 (grey replicated).
    RGBA and palette images are converted to RGB; 16-bit images are scaled with
    `scale_16bit_to_8bit` and a warning.
    """
    path = Path(path)
    if not path.exists():
        raise ImageError(f"{path}: file not found")
    try:
        with Image.open(path) as im:
            im.load()
            if im.mode in ("I;16", "I;16B", "I;16L", "I"):
                arr = scale_16bit_to_8bit(np.asarray(im))
                log.warning("%s: %s image scaled to 8 bits by its min-max range", path, im.mode)
            elif im.mode == "F":
                raise ImageError(
                    f"{path}: floating-point images are not supported; save it as 8- or 16-bit PNG"
                )
            elif im.mode in ("L", "RGB"):
                arr = np.asarray(im)
            elif im.mode in ("1",):
                arr = np.asarray(im.convert("L"))
            elif im.mode in ("LA",):
                arr = np.asarray(im.convert("L"))
            else:  # P, RGBA, CMYK, YCbCr, ...
                arr = np.asarray(im.convert("RGB"))
    except ImageError:
        raise
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise ImageError(
            f"{path}: unreadable or truncated image ({exc}); re-export or remove the file"
        ) from exc
    arr = np.ascontiguousarray(arr)
    if arr.ndim == 3 and arr.shape[2] == 3 and mode == "auto" and _is_grey_rgb(arr):
        arr = arr[..., 0].copy()
    if mode == "grey" and arr.ndim == 3:
        arr = rgb_to_grey_uint8(arr)
    elif mode == "rgb" and arr.ndim == 2:
        arr = np.repeat(arr[..., None], 3, axis=2)
    return arr


def _is_grey_rgb(arr: np.ndarray) -> bool:
    return bool(
        np.array_equal(arr[..., 0], arr[..., 1]) and np.array_equal(arr[..., 0], arr[..., 2])
    )


def rgb_to_grey_uint8(arr: np.ndarray) -> np.ndarray:
    """BT.601 luminance Y = 0.299 R + 0.587 G + 0.114 B, rounded (the METRICS.md convention)."""
    y = arr[..., 0] * 0.299 + arr[..., 1] * 0.587 + arr[..., 2] * 0.114
    return np.clip(np.rint(y), 0, 255).astype(np.uint8)


def to_tensor(arr: np.ndarray) -> torch.Tensor:
    """uint8 H x W (x 3) -> float32 1 x C x H x W in [0, 1]."""
    arr = np.ascontiguousarray(arr)
    if not arr.flags.writeable:  # torch.from_numpy warns on read-only buffers
        arr = arr.copy()
    t = torch.from_numpy(arr).float().div_(255.0)
    if t.ndim == 2:
        t = t[None]
    else:
        t = t.permute(2, 0, 1)
    return t[None]


def to_uint8(t: torch.Tensor) -> np.ndarray:
    """float C x H x W (or 1 x C x H x W) in [0, 1] -> uint8 H x W (grey) or H x W x 3."""
    if t.ndim == 4:
        if t.shape[0] != 1:
            raise ValueError("to_uint8 takes one image; index the batch first")
        t = t[0]
    arr = (t.detach().float().clamp(0, 1) * 255.0).round().to(torch.uint8).cpu().numpy()
    return arr[0] if arr.shape[0] == 1 else np.transpose(arr, (1, 2, 0))


def _tmp_name(path: Path) -> Path:
    return path.with_name(f".{path.name}.tmp-{os.getpid()}")


def write_image(path: str | Path, arr: np.ndarray) -> None:
    """Write a uint8 array as an image, atomically (temporary name, then rename)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _tmp_name(path)
    try:
        Image.fromarray(arr).save(tmp, format=_format_for(path))
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def _format_for(path: Path) -> str:
    ext = path.suffix.lower()
    return {".jpg": "JPEG", ".jpeg": "JPEG", ".bmp": "BMP", ".tif": "TIFF", ".tiff": "TIFF"}.get(
        ext, "PNG"
    )


def write_bytes(path: str | Path, data: bytes) -> None:
    """Write a file atomically (temporary name, then rename)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _tmp_name(path)
    try:
        tmp.write_bytes(data)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def write_text(path: str | Path, text: str) -> None:
    """Write a text file atomically."""
    write_bytes(path, text.encode("utf-8"))


@contextlib.contextmanager
def atomic_dir(path: str | Path) -> Iterator[Path]:
    """Build a directory under a temporary name and move it into place only on success.

    An existing directory at `path` is replaced at the end; on any exception the temporary
    directory is removed and `path` is left untouched.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.tmp-", dir=path.parent))
    try:
        yield tmp
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if path.exists():
        old = path.with_name(f".{path.name}.old-{os.getpid()}")
        os.replace(path, old)
        os.replace(tmp, path)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(tmp, path)


def list_images(folder: str | Path) -> dict[str, Path]:
    """Map stem -> image path for the image files in a folder (non-recursive).

    Raises ImageError if two files share a stem (e.g. a.png and a.jpg), since pairs are matched
    by stem.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise ImageError(f"{folder}: not a directory")
    out: dict[str, Path] = {}
    for p in sorted(folder.iterdir()):
        if not is_image_file(p):
            continue
        if p.stem in out:
            raise ImageError(
                f"{folder}: two images share the stem '{p.stem}' ({out[p.stem].name}, {p.name}); keep one"
            )
        out[p.stem] = p
    return out
