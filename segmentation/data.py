"""Fused images with their class-id masks, as a torch Dataset.

A sample pairs `data/fused/<method>/<split>/<stem>.png` with the prepared mask
`data/prepared/<split>/masks/<stem>.png` (class ids in `Manifest.seg_classes` order, 255 = ignore).
Every method's output becomes a 3-channel image the same way: grey is replicated, colour is kept.
Training augmentation (scale jitter, flips, optional random crop) draws from a generator seeded by
(seed, epoch, index), so it is reproducible whatever the number of loader workers.
Batches are padded on the bottom and right to a multiple of 32 (image with 0, mask with 255 so
padding never counts); `Batch.sizes` keeps each image's own size to crop predictions back.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, UnidentifiedImageError
from torch.utils.data import Dataset

from mmif.augment import Appearance, jitter
from mmif.io import ImageError, list_images, read_image
from mmif.layout import IGNORE_INDEX, Manifest, list_pairs

log = logging.getLogger(__name__)

PAD_MULTIPLE = 32


@dataclass(frozen=True)
class Sample:
    """One fused (or source) image and its mask; pixels of the `ignore` class ids become 255
    (ignored) when loaded."""

    stem: str
    image: Path
    mask: Path
    ignore: tuple[int, ...] = ()


@dataclass
class Batch:
    """images: B x 3 x H x W float in [0, 1]; masks: B x H x W int64 (255 = ignore);
    sizes: each image's (height, width) before padding."""

    images: torch.Tensor
    masks: torch.Tensor
    stems: list[str]
    sizes: list[tuple[int, int]]

    def __len__(self) -> int:
        return len(self.stems)


def find_samples(fused_root: str | Path, data_root: str | Path, split: str) -> list[Sample]:
    """Samples of one split: prepared pairs that have a mask, matched to their fused image.

    Pairs without a mask are left out (with a warning); a pair whose fused image is missing is
    an error, since it means the fusion stage did not run on the whole dataset.
    """
    fused_root, data_root = Path(fused_root), Path(data_root)
    pairs = list_pairs(data_root, split)
    labelled = [p for p in pairs if p.mask is not None]
    if len(labelled) < len(pairs):
        log.warning(
            "%s/%s: %d of %d pairs have no mask in masks/ and are left out of segmentation",
            data_root,
            split,
            len(pairs) - len(labelled),
            len(pairs),
        )
    if not labelled:
        return []
    fused_dir = fused_root / split
    if not fused_dir.is_dir():
        raise ImageError(
            f"{fused_dir}: no fused images for split '{split}'; run `mmif fuse --data {data_root}` for this method first"
        )
    fused = list_images(fused_dir)
    samples = []
    for p in labelled:
        if p.stem not in fused:
            raise ImageError(
                f"{fused_dir}/{p.stem}.png: missing fused image for mask {p.mask}; re-run the fusion stage for this method"
            )
        samples.append(Sample(p.stem, fused[p.stem], p.mask))  # type: ignore[arg-type]
    return samples


def source_samples(
    data_root: str | Path,
    split: str,
    modalities: tuple[str, ...] = ("ir", "vis"),
    modality_labels: bool = True,
) -> list[Sample]:
    """The prepared source images of one split as samples, each modality a separate sample
    (`<stem>_ir`, `<stem>_vis`) with the pair's mask: what the shared segmenter trains on.
    Pairs without a mask are left out.

    modality_labels: pixels of classes a modality does not show (`Manifest.sees`: recorded by
    the synthetic data, e.g. lane markings in infrared, people in visible light at night) are
    ignored in that modality's sample rather than taught as what the image cannot show.
    """
    manifest = Manifest.load(data_root)
    classes = list(manifest.seg_classes)
    out = []
    for pair in list_pairs(data_root, split):
        if pair.mask is None:
            continue
        for m in modalities:
            ignore = ()
            if modality_labels:
                ignore = tuple(
                    i for i, n in enumerate(classes) if not manifest.sees(n, m, pair.stem)
                )
            out.append(Sample(f"{pair.stem}_{m}", getattr(pair, m), pair.mask, ignore))
    return out


def read_mask(path: str | Path, n_classes: int) -> np.ndarray:
    """A class-id mask as uint8 H x W; values must be < n_classes or 255 (ignore).

    Grey ("L"), palette ("P", whose indices are the ids) and 16-bit grey PNGs are accepted.
    """
    path = Path(path)
    try:
        with Image.open(path) as im:
            im.load()
            mode = im.mode
            arr = np.asarray(im)
    except (FileNotFoundError, UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise ImageError(f"{path}: unreadable mask ({exc}); re-run `mmif prepare`") from exc
    if mode not in ("L", "P", "I;16", "I;16B", "I;16L", "I"):
        raise ImageError(
            f"{path}: mask has mode {mode}; store class ids as a single-channel 8-bit PNG (255 = ignore)"
        )
    bad = (arr != IGNORE_INDEX) & ((arr < 0) | (arr >= n_classes))
    if bad.any():
        value = int(arr[bad].flat[0])
        raise ImageError(
            f"{path}: class id {value} is outside 0..{n_classes - 1} (the {n_classes} seg_classes of "
            f"manifest.json) and is not {IGNORE_INDEX} (ignore); fix the mask or the manifest"
        )
    return arr.astype(np.uint8)


class SegmentationDataset(Dataset):
    """Fused image + mask pairs; item = (image 3 x H x W float in [0, 1], mask H x W int64, stem).

    train=True applies the augmentation of `SegmentConfig` (scale jitter in
    [scale_min, scale_max], flips, random crop of crop_size, then the photometric changes of
    `appearance`, mmif.augment); call `set_epoch` before each epoch
    so every epoch draws new, reproducible augmentations.
    """

    def __init__(
        self,
        samples: list[Sample],
        n_classes: int,
        train: bool = False,
        seed: int = 0,
        scale_range: tuple[float, float] = (1.0, 1.0),
        hflip: bool = False,
        vflip: bool = False,
        crop_size: int | None = None,
        appearance: Appearance | None = None,
    ):
        self.samples = list(samples)
        self.n_classes = n_classes
        self.train = train
        self.seed = seed
        self.scale_range = scale_range
        self.hflip, self.vflip = hflip, vflip
        self.crop_size = crop_size
        self.appearance = appearance if appearance is not None and appearance.active else None
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor, str]:
        s = self.samples[index]
        image = load_image(s.image)
        raw = read_mask(s.mask, self.n_classes)
        if s.ignore:
            raw = np.where(np.isin(raw, s.ignore), IGNORE_INDEX, raw).astype(np.uint8)
        mask = torch.from_numpy(raw).long()
        if tuple(image.shape[1:]) != tuple(mask.shape):
            raise ImageError(
                f"{s.image}: size {image.shape[2]}x{image.shape[1]} differs from its mask {s.mask} "
                f"({mask.shape[1]}x{mask.shape[0]}); fused images must keep the prepared size"
            )
        if self.train:
            rng = np.random.default_rng([self.seed, self.epoch, index])
            image, mask = self._augment(image, mask, rng)
        return image, mask, s.stem

    def _augment(
        self, image: torch.Tensor, mask: torch.Tensor, rng: np.random.Generator
    ) -> tuple[torch.Tensor, torch.Tensor]:
        lo, hi = self.scale_range
        scale = float(rng.uniform(lo, hi)) if hi > lo else lo
        if scale != 1.0:
            h, w = mask.shape
            size = (max(1, round(h * scale)), max(1, round(w * scale)))
            image = F.interpolate(
                image[None], size=size, mode="bilinear", align_corners=False, antialias=scale < 1
            )[0].clamp_(0, 1)
            mask = F.interpolate(mask[None, None].float(), size=size, mode="nearest-exact")[
                0, 0
            ].long()
        if self.hflip and rng.random() < 0.5:
            image, mask = image.flip(-1), mask.flip(-1)
        if self.vflip and rng.random() < 0.5:
            image, mask = image.flip(-2), mask.flip(-2)
        if self.crop_size is not None:
            c = self.crop_size
            image, mask = pad_to(image, mask, max(c, mask.shape[0]), max(c, mask.shape[1]))
            top = int(rng.integers(0, mask.shape[0] - c + 1))
            left = int(rng.integers(0, mask.shape[1] - c + 1))
            image, mask = (
                image[:, top : top + c, left : left + c],
                mask[top : top + c, left : left + c],
            )
        if self.appearance is not None:
            hwc = image.permute(1, 2, 0).numpy()
            image = torch.from_numpy(jitter(hwc, self.appearance, rng)).permute(2, 0, 1)
        return image.contiguous(), mask.contiguous()


def load_image(path: Path) -> torch.Tensor:
    """A fused image as 3 x H x W float in [0, 1]: grey replicated to 3 channels, colour kept."""
    arr = read_image(path, mode="rgb")
    return torch.from_numpy(np.array(arr, copy=True)).permute(2, 0, 1).float().div_(255.0)


def pad_to(
    image: torch.Tensor, mask: torch.Tensor, height: int, width: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Pad a C x h x w image with 0 and its h x w mask with 255 on the bottom and right."""
    ph, pw = height - mask.shape[-2], width - mask.shape[-1]
    if ph < 0 or pw < 0:
        raise ValueError(
            f"pad_to: target {height}x{width} is smaller than the input {tuple(mask.shape)}"
        )
    if ph == 0 and pw == 0:
        return image, mask
    return F.pad(image, (0, pw, 0, ph), value=0.0), F.pad(mask, (0, pw, 0, ph), value=IGNORE_INDEX)


def round_up(n: int, multiple: int = PAD_MULTIPLE) -> int:
    return -(-n // multiple) * multiple


def collate(items: list[tuple[torch.Tensor, torch.Tensor, str]]) -> Batch:
    """Stack dataset items, padding all to the batch's largest size rounded up to 32."""
    sizes = [(int(m.shape[0]), int(m.shape[1])) for _, m, _ in items]
    height = round_up(max(h for h, _ in sizes))
    width = round_up(max(w for _, w in sizes))
    padded = [pad_to(img, m, height, width) for img, m, _ in items]
    return Batch(
        images=torch.stack([p[0] for p in padded]),
        masks=torch.stack([p[1] for p in padded]),
        stems=[stem for _, _, stem in items],
        sizes=sizes,
    )
