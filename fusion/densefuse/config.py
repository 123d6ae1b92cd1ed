"""Parameters of DenseFuse training and fusion (`fusion.densefuse` in params.yaml)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Literal

FusionRule = Literal["addition", "l1_norm"]
#: the fusion rule when neither params.yaml nor the weights name one
DEFAULT_RULE: FusionRule = "addition"


@dataclass
class DenseFuseConfig:
    """DenseFuse settings; defaults follow Li & Wu (2019) where the paper fixes them.

    epochs: passes over the patch set. steps: optimiser steps instead (null: `epochs` decides);
    a budget in steps trains a small dataset as much as a large one (epoch after epoch over the
    patch set, stopping mid-epoch when the budget is spent). patches_per_step: training patches
    per optimiser step (was `batch_size`). lr: Adam learning rate (paper 1e-4). patch_size: side
    of the square training patches (>= 16, the SSIM window needs room). patches_per_image: random patches cut once from every
    training image, infrared and visible alike. ssim_weight: lambda in loss = MSE + lambda (1 - SSIM)
    (paper's released models: 1e2). seed: seeds initialisation, patch sampling and shuffling.
    fusion_rule: "addition" (sum of encoder features) or "l1_norm" (features weighted by their
    3 x 3-averaged l1 activity); null: the rule the weights were trained with, else addition.
    device: cpu, cuda, cuda:N or auto.
    """

    RENAMED: ClassVar[dict[str, str]] = {"batch_size": "patches_per_step"}

    epochs: int = 10
    steps: int | None = None
    patches_per_step: int = 16
    lr: float = 1e-4
    patch_size: int = 64
    patches_per_image: int = 8
    ssim_weight: float = 100.0
    seed: int = 0
    fusion_rule: FusionRule | None = None
    device: str = "auto"

    def validate(self) -> None:
        if self.epochs < 1 or self.patches_per_step < 1 or self.patches_per_image < 1:
            raise ValueError("epochs, patches_per_step and patches_per_image must be >= 1")
        if self.steps is not None and self.steps < 1:
            raise ValueError(f"steps must be >= 1 (or null to count epochs), got {self.steps}")
        if self.patch_size < 16:
            raise ValueError(
                f"patch_size must be >= 16 (SSIM uses an 11 x 11 window), got {self.patch_size}"
            )
        if self.lr <= 0 or self.ssim_weight < 0:
            raise ValueError(
                f"lr must be > 0 and ssim_weight >= 0, got lr={self.lr}, ssim_weight={self.ssim_weight}"
            )
