"""`SegmentConfig`: the `segment:` section of params.yaml."""

from __future__ import annotations

import re
from dataclasses import dataclass

import torch

_DEVICE = re.compile(r"^(auto|cpu|cuda(:\d+)?)$")


@dataclass
class SegmentConfig:
    """How the segmentation network is built and trained on fused images.

    arch: segmentation_models_pytorch architecture name ("Unet", "FPN", "DeepLabV3Plus", ...).
    encoder: smp encoder name; "resnet18" is light and needs nothing from the network.
    decoder_channels: decoder widths, deepest first, for architectures that take them (Unet,
        UnetPlusPlus: one per encoder stage, e.g. [128, 64, 32, 16, 8]); None keeps smp's default.
    encoder_weights: path of a local encoder state dict (.pt/.pth/.safetensors, e.g. torchvision's
        resnet18 ImageNet weights). None trains from scratch. A path that does not exist logs a
        warning and trains from scratch; metrics.json records `pretrained` either way. Weights are
        never downloaded.
    epochs: training epochs. batch_size: images per step (training and evaluation).
    lr: AdamW learning rate, decayed by a cosine schedule to 0 over all steps.
    weight_decay: AdamW weight decay.
    crop_size: side of the square random training crop in pixels (a multiple of 32), taken after
        scale jitter; images smaller than the crop are padded with ignore. None trains on whole
        images (padded to a multiple of 32). Evaluation always uses whole images.
    scale_min, scale_max: range of the random scale factor applied to training images.
    hflip, vflip: random horizontal / vertical flips (probability 0.5 each) in training.
    dice_weight: weight of the Dice term; the loss is cross-entropy + dice_weight * Dice.
    amp: mixed precision (float16 autocast); used on CUDA only, ignored on CPU.
    device: "auto" (CUDA when available), "cpu", "cuda" or "cuda:N".
    num_workers: DataLoader worker processes (0 loads in the main process).
    jobs: seeds of one method trained at once by `mmif segment`, each in its own process with an
        equal share of the CPU cores: "auto" (every seed at once on the CPU, one at a time on
        CUDA) or a number (1 = one after another in one process).
    """

    arch: str = "Unet"
    encoder: str = "resnet18"
    encoder_weights: str | None = None
    decoder_channels: list[int] | None = None
    epochs: int = 30
    batch_size: int = 8
    lr: float = 1e-3
    weight_decay: float = 1e-4
    crop_size: int | None = None
    scale_min: float = 0.75
    scale_max: float = 1.25
    hflip: bool = True
    vflip: bool = False
    dice_weight: float = 1.0
    amp: bool = True
    device: str = "auto"
    num_workers: int = 0
    jobs: int | str = "auto"

    def validate(self) -> None:
        """Raise ValueError naming the key of the first invalid value."""
        import segmentation_models_pytorch as smp

        archs = smp.MODEL_ARCHITECTURES_MAPPING
        if self.arch.lower() not in archs:
            raise ValueError(
                f"arch: unknown architecture {self.arch!r}; one of {', '.join(sorted(archs))}"
            )
        encoders = smp.encoders.get_encoder_names()
        if self.encoder not in encoders and not self.encoder.startswith("tu-"):
            raise ValueError(
                f"encoder: unknown encoder {self.encoder!r}; e.g. resnet18, resnet34, mobilenet_v2"
            )
        if self.decoder_channels is not None and (
            not self.decoder_channels or any(int(c) < 1 for c in self.decoder_channels)
        ):
            raise ValueError(
                f"decoder_channels: a list of positive widths (or null), got {self.decoder_channels}"
            )
        if self.epochs < 1:
            raise ValueError(f"epochs: must be at least 1, got {self.epochs}")
        if self.batch_size < 1:
            raise ValueError(f"batch_size: must be at least 1, got {self.batch_size}")
        if not self.lr > 0:
            raise ValueError(f"lr: must be positive, got {self.lr}")
        if self.weight_decay < 0:
            raise ValueError(f"weight_decay: must be >= 0, got {self.weight_decay}")
        if self.crop_size is not None and (self.crop_size < 32 or self.crop_size % 32):
            raise ValueError(
                f"crop_size: must be a multiple of 32 (or null for whole images), got {self.crop_size}"
            )
        if not 0 < self.scale_min <= self.scale_max:
            raise ValueError(
                f"scale_min, scale_max: need 0 < scale_min <= scale_max, got {self.scale_min}, {self.scale_max}"
            )
        if self.dice_weight < 0:
            raise ValueError(f"dice_weight: must be >= 0, got {self.dice_weight}")
        if not _DEVICE.match(self.device):
            raise ValueError(f"device: {self.device!r} is not one of auto, cpu, cuda, cuda:N")
        if self.num_workers < 0:
            raise ValueError(f"num_workers: must be >= 0, got {self.num_workers}")
        if self.jobs != "auto" and (
            isinstance(self.jobs, bool) or not isinstance(self.jobs, int) or self.jobs < 1
        ):
            raise ValueError(
                f"jobs: expected auto or a positive number of processes, got {self.jobs!r}"
            )


def resolve_device(device: str | torch.device) -> torch.device:
    """'auto' -> CUDA when available, else CPU; an unavailable CUDA device is an error."""
    from mmif.runtime import resolve_device as resolve

    return resolve(device, "segment.device")
