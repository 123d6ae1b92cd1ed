"""`fusion.coconet` in params.yaml: training schedule, loss constants and inference settings."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, ClassVar, Literal


@dataclass
class StageConfig:
    """One training stage. epochs: passes over the stage's patches (0 skips the stage);
    steps: optimiser steps instead (null: `epochs` decides); a budget in steps trains a small
    dataset as much as a large one, drawing fresh patches epoch after epoch and stopping
    mid-epoch when the budget is spent; patches_per_step: training patches per optimiser step
    (was `batch_size`); lr: Adam learning rate."""

    RENAMED: ClassVar[dict[str, str]] = {"batch_size": "patches_per_step"}

    epochs: int = 30
    steps: int | None = None
    patches_per_step: int = 30
    lr: float = 1e-4

    # validate() raises ValueError; mmif.config.from_dict turns it into a ConfigError that
    # carries the dotted key (e.g. params.yaml:fusion.coconet.stage1: epochs: must be >= 0)
    def validate(self) -> None:
        if self.epochs < 0:
            raise ValueError("epochs: must be >= 0")
        if self.steps is not None and self.steps < 0:
            raise ValueError("steps: must be >= 0 (or null to count epochs)")
        if self.patches_per_step < 1:
            raise ValueError("patches_per_step: must be >= 1")
        if not self.lr > 0:
            raise ValueError("lr: must be > 0")


@dataclass
class FinetuneStageConfig(StageConfig):
    """Stage 2 (fidelity + contrastive loss on patches with salient targets): 2 epochs as published."""

    epochs: int = 2


@dataclass
class CoCoNetConfig:
    """CoCoNet training and inference (`fusion.coconet` in params.yaml).

    Training (published schedule by default):
        stage1: fidelity loss only (30 epochs, batch 30, Adam lr 1e-4).
        stage2: fidelity + lambda_con * contrastive loss on patches whose salient mask is not
            empty (2 epochs, batch 30, lr 1e-4). Stage 2 continues stage 1's Adam (its moments
            and step count), as the published fine-tuning does; only the learning rate changes.
            Each stage counts `epochs`, or `steps` when set.
        patch_size: side of the square training patches (multiple of 16, >= 16).
        patches_per_image: random patches drawn from every training pair in each epoch (stage 2:
            from every pair with a salient target, each patch containing some of it).
        flips: random horizontal and vertical flips of the patches.
        n_negatives: negatives per anchor in the contrastive loss (the same pair's other
            modality plus n_negatives - 1 other pairs of the batch).
        lambda_con: weight of the contrastive loss.
        c1, c2: temperatures of the self-adaptive weights (gradient -> SSIM, entropy -> MSE).
        ssim_weight: weight of L_ssim against L_mse.
        seed: seeds the network initialisation, the untrained VGG19 stand-in and the patches.
        vgg_weights: torchvision VGG19 weights file; null = torchvision's local cache or, if
            absent, an untrained VGG19 (recorded as vgg_pretrained: false). Never downloaded.
        salient_classes: detection classes (names from the manifest, or ids) that make the
            salient mask when it comes from YOLO labels; null = every class.
        saliency_std: when neither salient masks nor labels exist, infrared pixels brighter than
            mean + saliency_std * std (after a light blur) are the salient targets.
        bn_recalibration: after training, recompute the BatchNorm running statistics that
            inference uses, for the final weights, as exact averages over this many random
            stage-1 patches (whole-image content, no gradient). Without it they are running
            averages of the last training steps, which in stage 2 see only target-centred
            patches. 0 keeps those.
        contrastive_precision: dtype of the VGG19 passes of the contrastive loss (anchors,
            positives, negatives; distances and ratios stay float32): "auto" uses bfloat16
            where the hardware computes it natively (CUDA with bfloat16, CPUs with AVX512-BF16
            or AMX; the loss then costs 0.6x), else float32.
    Inference:
        tile_size: images larger than this (either side) are fused in overlapping tiles of this
            size (multiple of 16) and blended; tile_overlap: their overlap in pixels.
        images_per_pass: images, or tiles of the images larger than tile_size, per forward pass
            of the network (was `batch_size`; the fuse stage hands over `fuse_batch_size` pairs
            at a time, which this splits into passes).
        device: auto, cpu, cuda or cuda:N (training; the fuse stage passes its own device).
        amp: mixed precision on CUDA (bfloat16 where supported; float16 for inference
            otherwise).
        amp_cpu: train under bfloat16 autocast on a CPU that computes bfloat16 natively
            (AVX512-BF16 or AMX; ignored elsewhere): about 1.7x faster steps on such a CPU.
            Weights, optimiser and losses stay float32; CPU inference always runs in float32.
    """

    RENAMED: ClassVar[dict[str, str]] = {"batch_size": "images_per_pass"}

    stage1: StageConfig = field(default_factory=StageConfig)
    stage2: FinetuneStageConfig = field(default_factory=FinetuneStageConfig)
    patch_size: int = 64
    patches_per_image: int = 8
    flips: bool = True
    n_negatives: int = 3
    lambda_con: float = 1.0
    c1: float = 0.5
    c2: float = 0.75
    ssim_weight: float = 20.0
    seed: int = 0
    vgg_weights: str | None = None
    salient_classes: list[str | int] | None = None
    saliency_std: float = 1.0
    bn_recalibration: int = 600
    contrastive_precision: Literal["auto", "float32", "bfloat16"] = "auto"
    tile_size: int = 1024
    tile_overlap: int = 64
    images_per_pass: int = 4
    device: str = "auto"
    amp: bool = True
    amp_cpu: bool = False

    def validate(self) -> None:
        if self.patch_size < 16 or self.patch_size % 16:
            raise ValueError("patch_size: must be a multiple of 16 and at least 16")
        if self.patches_per_image < 1:
            raise ValueError("patches_per_image: must be >= 1")
        if self.bn_recalibration < 0:
            raise ValueError("bn_recalibration: must be >= 0 (0 = off)")
        if self.n_negatives < 1:
            raise ValueError("n_negatives: must be >= 1")
        for name in ("lambda_con", "ssim_weight", "saliency_std"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name}: must be >= 0")
        for name in ("c1", "c2"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name}: must be > 0")
        if self.tile_size < 64 or self.tile_size % 16:
            raise ValueError("tile_size: must be a multiple of 16 and at least 64")
        if not 0 <= self.tile_overlap <= self.tile_size // 2:
            raise ValueError("tile_overlap: must be in [0, tile_size / 2]")
        if self.images_per_pass < 1:
            raise ValueError("images_per_pass: must be >= 1")
        if not (self.device in ("auto", "cpu", "cuda") or self.device.startswith("cuda:")):
            raise ValueError(f"device: {self.device!r} is not auto, cpu, cuda or cuda:N")

    def to_dict(self) -> dict[str, Any]:
        """Plain dict of primitives (stored in checkpoints, loadable with weights_only=True)."""
        return asdict(self)


#: fields that change what training computes; a checkpoint is resumed only if they match
#: (a stage's epochs or steps may grow: training then continues)
TRAINING_KEYS = (
    "patch_size",
    "patches_per_image",
    "flips",
    "n_negatives",
    "lambda_con",
    "c1",
    "c2",
    "ssim_weight",
    "seed",
    "vgg_weights",
    "salient_classes",
    "saliency_std",
    "contrastive_precision",
    "amp_cpu",
    "stage1.patches_per_step",
    "stage1.lr",
    "stage2.patches_per_step",
    "stage2.lr",
)
