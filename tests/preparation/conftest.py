"""Fixtures for the dataset tests: tiny hand-made datasets written into tmp_path in the upstream
layouts of MSRS, M3FD, LLVIP, FMB and plain folders (the team's real data: `shared_data` in
tests/conftest.py)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from PIL import Image


def image(h: int = 24, w: int = 32, colour: bool = False, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (h, w, 3) if colour else (h, w), dtype=np.uint8)


def save(path: Path, arr: np.ndarray, **kw) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(arr).save(path, **kw)
    return path


def write_pairs(
    ir_dir: Path,
    vis_dir: Path,
    stems: Sequence[str],
    h: int = 24,
    w: int = 32,
    ir_ext: str = ".png",
    vis_ext: str = ".png",
) -> None:
    for i, stem in enumerate(stems):
        save(ir_dir / f"{stem}{ir_ext}", image(h, w, seed=2 * i))
        save(vis_dir / f"{stem}{vis_ext}", image(h, w, colour=True, seed=2 * i + 1))


def save_palette(path: Path, ids: np.ndarray) -> Path:
    """A palette ("P") PNG whose indices are `ids` and whose colours are unrelated to them."""
    path.parent.mkdir(parents=True, exist_ok=True)
    im = Image.frombytes("P", (ids.shape[1], ids.shape[0]), np.ascontiguousarray(ids).tobytes())
    im.putpalette([v for i in range(256) for v in (i, 255 - i, (7 * i) % 256)])
    im.save(path)
    return path


def voc_xml(
    size: tuple[int, int] | None, objects: Sequence[tuple[str, float, float, float, float]]
) -> str:
    """A Pascal VOC annotation; objects are (name, xmin, ymin, xmax, ymax)."""
    size_xml = (
        f"<size><width>{size[0]}</width><height>{size[1]}</height><depth>3</depth></size>"
        if size
        else ""
    )
    objs = "".join(
        f"<object><name>{n}</name><difficult>0</difficult><bndbox><xmin>{a}</xmin><ymin>{b}</ymin>"
        f"<xmax>{c}</xmax><ymax>{d}</ymax></bndbox></object>"
        for n, a, b, c, d in objects
    )
    return f"<annotation><filename>x.png</filename>{size_xml}{objs}</annotation>"


@pytest.fixture
def folders_root(tmp_path) -> Path:
    """Plain two-folder dataset: ir/ + vis/, 6 pairs of 32 x 24."""
    root = tmp_path / "pairs"
    write_pairs(root / "ir", root / "vis", [f"p{i:02d}" for i in range(6)])
    return root


@pytest.fixture
def msrs_root(tmp_path) -> Path:
    """MSRS layout: train (4 pairs) and test (2) with ir/, vi/, Segmentation_labels/; det labels
    in a separate release-style folder fusion/{train,test}/ with classes.txt."""
    root = tmp_path / "MSRS"
    splits = {"train": ["00001D", "00002D", "00003N", "00004N"], "test": ["00005D", "00006N"]}
    det = tmp_path / "MSRS-detection-label" / "fusion"
    for split, stems in splits.items():
        write_pairs(root / split / "ir", root / split / "vi", stems)
        for stem in stems:
            mask = np.zeros((24, 32), np.uint8)
            mask[4:12, 2:8] = 2  # person
            mask[14:20, 10:30] = 1  # car
            mask[0:2, :] = 4  # curve
            save(root / split / "Segmentation_labels" / f"{stem}.png", mask)
            (det / split).mkdir(parents=True, exist_ok=True)
            (det / split / f"{stem}.txt").write_text(
                "0 0.156250 0.333333 0.187500 0.333333\n2 0.625 0.708333 0.625 0.25\n"
            )
    (det.parent / "classes.txt").write_text("person\nbicycle\ncar\n")
    return root


@pytest.fixture
def m3fd_root(tmp_path) -> Path:
    """M3FD as downloaded: Ir/, Vis/, Annotation/ (VOC), 10 pairs of 40 x 20, no split."""
    root = tmp_path / "M3FD"
    stems = [f"{i:05d}" for i in range(10)]
    write_pairs(root / "Ir", root / "Vis", stems, h=20, w=40)
    (root / "Annotation").mkdir()
    for stem in stems:
        objs = [("People", 11, 6, 30, 15), ("Lamp", 1, 1, 4, 10)]
        (root / "Annotation" / f"{stem}.xml").write_text(voc_xml((40, 20), objs))
    return root


@pytest.fixture
def llvip_root(tmp_path) -> Path:
    """LLVIP: infrared|visible/{train,test} JPEGs (infrared stored as RGB) and Annotations/."""
    root = tmp_path / "LLVIP"
    stems = {"train": ["010001", "010002", "010003"], "test": ["190001"]}
    for split, ss in stems.items():
        for i, stem in enumerate(ss):
            grey = np.full((32, 40), 60 + 40 * i, np.uint8)
            save(
                root / "infrared" / split / f"{stem}.jpg",
                np.repeat(grey[..., None], 3, axis=2),
                quality=95,
            )
            save(
                root / "visible" / split / f"{stem}.jpg",
                image(32, 40, colour=True, seed=i),
                quality=95,
            )
            (root / "Annotations").mkdir(parents=True, exist_ok=True)
            (root / "Annotations" / f"{stem}.xml").write_text(
                voc_xml((40, 32), [("person", 5, 5, 14, 30)])
            )
    return root


@pytest.fixture
def fmb_root(tmp_path) -> Path:
    """FMB: train (4) and test (2) with Infrared/, Visible/, Label/ (palette PNG class ids)."""
    root = tmp_path / "FMB"
    for split, stems in {"train": ["a1", "a2", "a3", "a4"], "test": ["b1", "b2"]}.items():
        write_pairs(root / split / "Infrared", root / split / "Visible", stems, h=30, w=40)
        for stem in stems:
            mask = np.zeros((30, 40), np.uint8)
            mask[:10] = 7  # sky
            mask[20:28, 5:9] = 8  # person
            mask[20:30, 20:35] = 9  # car
            save_palette(root / split / "Label" / f"{stem}.png", mask)
    return root


def leftovers(out: Path) -> list[Path]:
    """The output folder and any temporary siblings that a failed write would leave."""
    if not out.parent.exists():
        return []
    return [
        p for p in out.parent.iterdir() if p.name == out.name or p.name.startswith(f".{out.name}.")
    ]


@pytest.fixture
def mk() -> SimpleNamespace:
    """The helpers above, for test modules in sub-folders (conftest modules are not importable)."""
    return SimpleNamespace(
        image=image,
        save=save,
        save_palette=save_palette,
        write_pairs=write_pairs,
        voc_xml=voc_xml,
        leftovers=leftovers,
    )
