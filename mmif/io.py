"""Image input/output with validation, atomic writes and safe output folders.

Images are read as uint8 numpy arrays (H x W for grey, H x W x 3 for colour) and converted to
float tensors in [0, 1] (B x C x H x W) at the library boundary. Every write goes to a temporary
name next to the target and is renamed into place, so an interrupted run never leaves a partial
file or folder behind.

Output folders (`atomic_dir`) are only ever replaced when that cannot lose a user's files: never
an input (or a folder inside or around one), never a file, and a non-empty folder only when mmif
wrote it (`OUTPUT_MARKER`) or the user passed --overwrite. Stems (file names without extension)
follow one rule for every command: `stem_problem`.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import re
import secrets
import shutil
import socket
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

from mmif.errors import BusyError, ImageError, OutputError

log = logging.getLogger(__name__)

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff")


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


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """The one atomic file write: yields a temporary name next to `path` to write to, which
    replaces `path` when the block ends without an exception (and is deleted otherwise).

    The parent folder is created. Every file the project writes goes through here (images,
    text, JSON, torch checkpoints, copied weights), so an interrupted run never leaves a
    partial file under the final name.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _tmp_name(path)
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def write_image(path: str | Path, arr: np.ndarray) -> None:
    """Write a uint8 array as an image, atomically (temporary name, then rename)."""
    with atomic_path(path) as tmp:
        Image.fromarray(arr).save(tmp, format=_format_for(Path(path)))


def _format_for(path: Path) -> str:
    ext = path.suffix.lower()
    return {".jpg": "JPEG", ".jpeg": "JPEG", ".bmp": "BMP", ".tif": "TIFF", ".tiff": "TIFF"}.get(
        ext, "PNG"
    )


def write_bytes(path: str | Path, data: bytes) -> None:
    """Write a file atomically (temporary name, then rename)."""
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def write_text(path: str | Path, text: str) -> None:
    """Write a text file atomically."""
    write_bytes(path, text.encode("utf-8"))


def save_torch(obj: Any, path: str | Path) -> None:
    """`torch.save` atomically (checkpoints, weights): a killed run leaves the old file intact."""
    with atomic_path(path) as tmp:
        torch.save(obj, tmp)


#: values json_safe passes through as they are (floats: the finite ones)
_PLAIN_SCALARS = frozenset({int, float, str, bool, type(None)})


def json_safe(value: Any) -> Any:
    """`value` with what JSON cannot hold made plain: NaN and infinities -> None (null), numpy
    and torch scalars -> Python numbers, arrays -> lists, tuples -> lists, paths -> strings,
    mapping keys -> strings. The one NaN-to-null rule of every JSON file the project writes."""
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        if all(type(v) in _PLAIN_SCALARS for v in value):
            # the common leaf (a box, a curve row): no call per number
            return [None if type(v) is float and not math.isfinite(v) else v for v in value]
        return [json_safe(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, (np.ndarray, torch.Tensor)) and value.ndim > 0:
        return [json_safe(v) for v in value.tolist()]
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def to_json(data: Any, indent: int | None = 2, sort_keys: bool = False) -> str:
    """JSON text of `data` after `json_safe` (strict JSON: no NaN), ending in a newline."""
    return json.dumps(json_safe(data), indent=indent, sort_keys=sort_keys, allow_nan=False) + "\n"


def write_json(
    path: str | Path, data: Any, indent: int | None = 2, sort_keys: bool = False
) -> None:
    """Write `data` as JSON atomically; NaN and infinities become null (`json_safe`)."""
    write_text(path, to_json(data, indent=indent, sort_keys=sort_keys))


# ----------------------------------------------------------------------------- output folders

#: written into every output folder that `atomic_dir` builds: a folder holding it was written by
#: mmif, so a later run may replace it without --overwrite
OUTPUT_MARKER = ".mmif-output"
#: `<parent>/.mmif-work/<name>/` next to an output keeps the files that must outlive one run of
#: the command writing it (training checkpoints, worker logs); see `work_dir_for`
WORK_FOLDER = ".mmif-work"

_HOST = re.sub(r"[^A-Za-z0-9]", "", socket.gethostname())[:40]
# `.<name>.tmp-<host>-<pid>-<random>`: an output under construction; `.old-`: one being replaced
_TEMPORARY = re.compile(
    r"^\.(?P<name>.*)\.(?:tmp|old)-(?P<host>[A-Za-z0-9]*)-(?P<pid>\d+)-[0-9a-f]{8}$"
)


def _absolute(path: str | Path) -> Path:
    """The absolute path with symbolic links resolved (`.` and relative paths included)."""
    return Path(path).expanduser().resolve()


def _pid_alive(pid: int) -> bool:
    if os.name == "nt":  # no harmless liveness probe there (os.kill terminates): never reclaim
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # e.g. another user's process: alive
        return True
    return True


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


def remove_stale_temporaries(parent: Path, name: str) -> list[Path]:
    """Delete the `.NAME.tmp-*` / `.NAME.old-*` entries in `parent` left by a killed run.

    Only entries made on this host by a process that no longer exists are removed (the process
    id is part of the name), so a run in progress elsewhere keeps its temporary folder.
    """
    removed = []
    try:
        entries = list(Path(parent).iterdir())
    except OSError:
        return removed
    for entry in entries:
        m = _TEMPORARY.match(entry.name)
        if not m or m["name"] != name or m["host"] != _HOST or _pid_alive(int(m["pid"])):
            continue
        _remove(entry)
        removed.append(entry)
        log.info("removed %s, left behind by an interrupted run (process %s)", entry, m["pid"])
    return removed


def make_temp_dir(parent: str | Path, name: str, kind: str = "tmp") -> Path:
    """Create `parent/.NAME.tmp-<host>-<pid>-<random>` with the user's normal permissions.

    Stale temporaries of the same name from killed runs are removed first. Unlike
    `tempfile.mkdtemp` (mode 0700) the folder gets the umask's permissions, as any folder the
    user makes, so results can be shared.
    """
    parent = Path(parent)
    parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(parent, name)
    while True:
        path = parent / f".{name}.{kind}-{_HOST}-{os.getpid()}-{secrets.token_hex(4)}"
        try:
            path.mkdir()
            return path
        except FileExistsError:
            continue


def _check_inputs(given: Path, target: Path, inputs: Iterable[str | Path | None]) -> None:
    for inp in inputs:
        if inp is None or str(inp) == "":
            continue
        src = _absolute(inp)
        if target == src:
            raise OutputError(
                f"{given}: this is the input {inp}; writing the output there would replace it. "
                "Choose another output path (nothing was changed)"
            )
        if src in target.parents:
            raise OutputError(
                f"{given}: lies inside the input {inp}; outputs are never written into an input "
                "folder. Choose an output path outside it (nothing was changed)"
            )
        if target in src.parents:
            raise OutputError(
                f"{given}: contains the input {inp}; replacing it would delete the input. "
                "Choose another output path (nothing was changed)"
            )


#: folders mmif wrote before it added OUTPUT_MARKER: a JSON file and the keys it always had
_EARLIER_SIGNATURES = {
    "manifest.json": {"name", "provenance", "splits"},  # prepare
    "model.json": {"method", "trainable", "weights"},  # train
    "info.json": {"method", "params", "n_images"},  # fuse
    "summary.json": {"methods"},  # report (with report.md beside it)
}


def _written_by_mmif(folder: Path) -> bool:
    if (folder / OUTPUT_MARKER).is_file():
        return True
    for name, keys in _EARLIER_SIGNATURES.items():
        path = folder / name
        if not path.is_file() or path.stat().st_size > 10_000_000:
            continue
        try:
            data = json.loads(path.read_text())
        except (OSError, UnicodeDecodeError, ValueError):
            continue
        if isinstance(data, dict) and keys <= set(data):
            return name != "summary.json" or (folder / "report.md").is_file()
    return False


def _is_replaceable(folder: Path) -> bool:
    """An empty folder, or one that mmif wrote (`OUTPUT_MARKER`, or the manifest, model card,
    info or summary file of an mmif output written before the marker existed)."""
    if not any(not _TEMPORARY.match(p.name) for p in folder.iterdir()):
        return True
    return _written_by_mmif(folder)


def is_mmif_output(folder: str | Path) -> bool:
    """Whether `folder` is one mmif may replace or delete: empty, or written by mmif."""
    folder = Path(folder)
    return folder.is_dir() and _is_replaceable(folder)


def check_output_dir(
    path: str | Path, inputs: Iterable[str | Path | None] = (), overwrite: bool = False
) -> Path:
    """Check that `path` may be (re)written as an output folder; returns it absolute.

    Raises OutputError, naming the folder and how to proceed, when `path`
    - is, lies inside or contains one of `inputs` (even with `overwrite`);
    - is an existing file (or other non-folder);
    - contains the current working folder;
    - is a non-empty folder that mmif did not write (no `OUTPUT_MARKER`), unless `overwrite`.
    """
    given = Path(path)
    target = _absolute(given)
    _check_inputs(given, target, inputs)
    if not target.exists():
        if target.is_symlink():
            raise OutputError(f"{given}: is a broken symbolic link; remove it or give another path")
        return target
    if not target.is_dir():
        raise OutputError(
            f"{given}: exists and is not a folder; give a folder path for the output "
            "(nothing was changed)"
        )
    if target.parent == target:
        raise OutputError(f"{given}: the file system root cannot be an output folder")
    if target in Path.cwd().resolve().parents:
        raise OutputError(
            f"{given}: contains the current folder; replacing it would pull the folder from "
            "under this shell. Give an output path outside it (nothing was changed)"
        )
    if not overwrite and not _is_replaceable(target):
        entries = sorted(p.name for p in target.iterdir() if not _TEMPORARY.match(p.name))
        raise OutputError(
            f"{given}: the folder exists and was not written by mmif (it holds {len(entries)} "
            f"entries, e.g. '{entries[0]}'); nothing was changed. Choose another output path, "
            "or pass --overwrite to replace the folder and delete everything in it"
        )
    return target


def check_output_file(path: str | Path, inputs: Iterable[str | Path | None] = ()) -> Path:
    """Check that a result file may be written at `path`; returns it absolute.

    A previous file there is replaced (as a shell redirection would), but never a folder, an
    input file, or anything inside an input folder: OutputError names the path and the fix.
    """
    given = Path(path)
    target = _absolute(given)
    if target.is_dir():
        raise OutputError(
            f"{given}: is a folder; give a file name for this output (nothing was changed)"
        )
    _check_inputs(given, target, inputs)
    return target


def _swap_in(target: Path, tmp: Path) -> None:
    """Move the finished folder `tmp` to `target`, replacing what is there."""
    if not target.exists():
        os.replace(tmp, target)
        return
    old = target.with_name(f".{target.name}.old-{_HOST}-{os.getpid()}-{secrets.token_hex(4)}")
    os.replace(target, old)
    try:
        os.replace(tmp, target)
    except BaseException:
        os.replace(old, target)
        raise
    _remove(old)


def _replace_contents(target: Path, tmp: Path) -> None:
    """Replace the contents of `target` (the current folder: it cannot move) with those of tmp."""
    for entry in list(target.iterdir()):
        if entry != tmp and not _TEMPORARY.match(entry.name):
            _remove(entry)
    for entry in list(tmp.iterdir()):
        os.replace(entry, target / entry.name)
    tmp.rmdir()


@contextlib.contextmanager
def atomic_dir(
    path: str | Path,
    *,
    inputs: Iterable[str | Path | None] = (),
    overwrite: bool = False,
    kind: str = "output",
) -> Iterator[Path]:
    """Build an output folder under a temporary name and move it into place only on success.

    First `check_output_dir(path, inputs, overwrite)` refuses a path whose replacement could
    lose files (an input, a file, a folder mmif did not write unless `overwrite`). The
    temporary folder `.NAME.tmp-<host>-<pid>-<random>` sits next to `path` (inside it when
    `path` is the current folder, which cannot be moved); it gets the user's normal
    permissions, is removed on any exception (Ctrl-C included), and one left by a killed run is
    removed by the next run. On success `OUTPUT_MARKER` (naming `kind`) is added and the folder
    replaces `path` as a whole.
    """
    target = check_output_dir(path, inputs, overwrite)
    in_place = target == Path.cwd().resolve()
    tmp = make_temp_dir(target if in_place else target.parent, "mmif" if in_place else target.name)
    try:
        yield tmp
        (tmp / OUTPUT_MARKER).write_text(
            f"written by mmif ({kind}); mmif may replace this folder when it writes it again\n"
        )
        if in_place:
            _replace_contents(target, tmp)
        else:
            _swap_in(target, tmp)
    except BaseException:
        _remove(tmp)
        raise


def work_dir_for(output: str | Path) -> Path:
    """The persistent working folder of one output: `<parent>/.mmif-work/<name>/` (not created).

    Keyed by the output's absolute path, so two outputs never share one (`A/coconet` and
    `B/coconet` get `A/.mmif-work/coconet` and `B/.mmif-work/coconet`), and the same output
    finds its folder whatever the current folder. `.mmif-work/` holds a `.gitignore` of `*`
    (and is in .dvcignore), so it shows up in neither git nor DVC.
    """
    target = _absolute(output)
    root = target.parent / WORK_FOLDER
    root.mkdir(parents=True, exist_ok=True)
    ignore = root / ".gitignore"
    if not ignore.exists():
        write_text(ignore, "# working files of mmif (training checkpoints, logs)\n*\n")
    return root / target.name


@contextlib.contextmanager
def exclusive(folder: str | Path, what: str) -> Iterator[Path]:
    """Hold an exclusive lock on `folder` (created) for the block; BusyError if another process
    holds it. Without `fcntl` (Windows) the block runs unlocked."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows
        yield folder
        return
    lock = folder / ".lock"
    with lock.open("a+") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            handle.seek(0)
            owner = handle.read().strip() or "?"
            raise BusyError(
                f"{what} is being written by another mmif process (pid {owner}, lock {lock}); "
                "wait for it to finish, or write to another output path"
            ) from exc
        try:
            handle.seek(0)
            handle.truncate()
            handle.write(f"{os.getpid()}\n")
            handle.flush()
            yield folder
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def stem_problem(stem: str) -> str | None:
    """Why a file stem cannot name an image pair, or None: the one rule of every command.

    Any name a file system holds is accepted (spaces, accents, other scripts, punctuation)
    except names with control characters (line breaks, tabs: they would break the label, CSV
    and log formats) and names that are not valid text (undecodable bytes). Hidden files (a
    leading dot) are never images (`is_image_file`).
    """
    if any(ord(c) < 32 or ord(c) == 127 for c in stem):
        return (
            "the file name contains a control character (line break, tab, ...), which would break "
            "label, CSV and log lines; rename the file"
        )
    try:
        stem.encode("utf-8")
    except UnicodeEncodeError:
        return "the file name is not valid UTF-8 text (undecodable bytes); rename the file"
    return None


def list_images(folder: str | Path) -> dict[str, Path]:
    """Map stem -> image path for the image files in a folder (non-recursive).

    Raises ImageError if two files share a stem (e.g. a.png and a.jpg), since pairs are matched
    by stem, and for a stem that `stem_problem` refuses.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise ImageError(f"{folder}: not a directory")
    out: dict[str, Path] = {}
    for p in sorted(folder.iterdir()):
        if not is_image_file(p):
            continue
        problem = stem_problem(p.stem)
        if problem:
            raise ImageError(f"{folder}/{p.name!r}: {problem}")
        if p.stem in out:
            raise ImageError(
                f"{folder}: two images share the stem '{p.stem}' ({out[p.stem].name}, {p.name}); keep one"
            )
        out[p.stem] = p
    return out
