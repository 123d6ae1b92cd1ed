"""Fused images made elsewhere (another paper's code, a released result folder) as a method.

`external:<name>` (or `external_<name>`) with params `{"dir": FOLDER}` reads `<FOLDER>/<stem>.<ext>`
for each pair instead of computing anything, so published results enter the same metrics,
detection and segmentation stages as the built-in methods. The folder may hold the images
directly or one subfolder per split (`train/`, `val/`, `test/`). `validate_external` checks a
folder against the pairs before the fuse stage writes anything.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from fusion.registry import FusionMethod, register
from mmif.io import ImageError, list_images, read_image, to_tensor
from mmif.layout import SPLITS


@dataclass
class ExternalParams:
    """`fusion.external_<name>` in params.yaml (or a method registered in external.yaml).
    dir: folder of fused images named by source stem."""

    dir: str = ""

    def validate(self) -> None:
        if not self.dir:
            raise ValueError(
                "dir is not set; give the folder of fused images in params.yaml or with --set dir=FOLDER"
            )


def validate_external(
    folder: str | Path,
    stems: Sequence[str],
    sizes: Mapping[str, tuple[int, int]] | None = None,
) -> dict[str, Path]:
    """Check that `folder` holds one readable fused image per stem, of the source size.

    sizes: stem -> (height, width) of the source pair (as `read_image(...).shape[:2]`); stems
    without an entry are only checked for presence and readability. Extra images in the folder
    are ignored. Returns stem -> image path. Raises ImageError naming the folder, the first
    missing stem or mis-sized file, and the fix.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise ImageError(
            f"{folder}: external fused-image folder not found; set `dir` of the external method "
            "to the folder holding one <stem>.png (any image extension) per source pair"
        )
    found = list_images(folder)
    missing = [s for s in stems if s not in found]
    if missing:
        raise ImageError(
            f"{folder}: no fused image for stem '{missing[0]}' ({len(missing)} of {len(stems)} missing); "
            f"add {missing[0]}.png (named like the source pair) or point `dir` at the right folder"
        )
    paths = {s: found[s] for s in stems}
    sizes = sizes or {}
    for stem, path in paths.items():
        arr = read_image(path)
        want = sizes.get(stem)
        if want is not None and tuple(arr.shape[:2]) != tuple(want):
            raise ImageError(
                f"{path} is {arr.shape[1]}x{arr.shape[0]} but the source pair '{stem}' is "
                f"{want[1]}x{want[0]}; re-export the fused image at the source size (no crop or padding)"
            )
    return paths


class ExternalFusion(FusionMethod):
    """Reads fused images by stem; `fuse_luminance` has no algorithm and refuses."""

    name = "external"

    def __init__(self, params: ExternalParams, device: torch.device):
        super().__init__(params, device)
        self.cfg = params
        self.folder = Path(self.cfg.dir)
        self.split: str | None = None
        self._index: dict[Path, dict[str, Path]] = {}

    def use_split(self, split: str | None) -> None:
        """Read from `<dir>/<split>/` when that subfolder exists (None: search every split folder)."""
        self.split = split

    def fuse_luminance(self, ir: torch.Tensor, vis: torch.Tensor) -> torch.Tensor:
        raise RuntimeError(
            f"'{self.name}' has no fusion algorithm: it reads fused images from {self.folder} by stem; "
            "call fuse_batch(ir, vis, stems) (as the fuse stage does), not fuse() or fuse_luminance()"
        )

    def _images_in(self, folder: Path) -> dict[str, Path]:
        if folder not in self._index:
            self._index[folder] = list_images(folder)
        return self._index[folder]

    def path_for(self, stem: str) -> Path:
        """The fused image of `stem` (searching `dir` and its split subfolders)."""
        if self.split is not None and (self.folder / self.split).is_dir():
            folders = [self.folder / self.split]
        else:
            folders = [self.folder / s for s in SPLITS if (self.folder / s).is_dir()] + [
                self.folder
            ]
        if not self.folder.is_dir():
            raise ImageError(
                f"{self.folder}: external fused-image folder not found; fix `dir` of {self.name}"
            )
        hits = [imgs[stem] for imgs in map(self._images_in, folders) if stem in imgs]
        if not hits:
            raise ImageError(
                f"{self.folder}: no fused image for stem '{stem}'; add {stem}.png or point `dir` at the right folder"
            )
        if len(hits) > 1:
            raise ImageError(
                f"{self.folder}: stem '{stem}' is in several folders ({', '.join(map(str, hits))}); "
                "select the split with use_split() or keep one of them"
            )
        return hits[0]

    def fuse_batch(self, ir: torch.Tensor, vis: torch.Tensor, stems: list[str]) -> torch.Tensor:
        """The stored fused images of `stems`, B x C x H x W in [0, 1] (C = 3 if any is colour)."""
        if len(stems) != ir.shape[0]:
            raise ValueError(f"{len(stems)} stems for a batch of {ir.shape[0]} images")
        h, w = ir.shape[-2:]
        images = []
        for stem in stems:
            path = self.path_for(stem)
            arr = read_image(path)
            if arr.shape[:2] != (h, w):
                raise ImageError(
                    f"{path} is {arr.shape[1]}x{arr.shape[0]} but the source pair '{stem}' is {w}x{h}; "
                    "re-export the fused image at the source size"
                )
            images.append(to_tensor(arr))
        channels = max(t.shape[1] for t in images)
        images = [t.expand(-1, channels, -1, -1) for t in images]
        return torch.cat(images).to(self.device)

    def info(self) -> dict[str, Any]:
        return {**super().info(), "external": True, "dir": str(self.folder)}


@register("external", params=ExternalParams)
def _external(params: ExternalParams, weights: Path | None, device: torch.device) -> FusionMethod:
    return ExternalFusion(params, device)
