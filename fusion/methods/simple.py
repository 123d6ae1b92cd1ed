"""Pixel-wise baselines: one source alone, mean, max and a fixed weighted average."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from fusion.registry import FusionMethod, NoParams, register


@dataclass
class WeightedParams:
    """`fusion.weighted` in params.yaml. weight_ir: weight of the infrared, in [0, 1] (the
    visible gets 1 - weight_ir)."""

    weight_ir: float = 0.5

    def validate(self) -> None:
        if not 0.0 <= self.weight_ir <= 1.0:
            raise ValueError(f"weight_ir: must be a number in [0, 1], got {self.weight_ir!r}")


class _Pixelwise(FusionMethod):
    def __init__(self, name: str, fn, params: Any, device: torch.device):
        super().__init__(params, device)
        self.name = name
        self._fn = fn

    def fuse_luminance(self, ir: torch.Tensor, vis: torch.Tensor) -> torch.Tensor:
        return self._fn(ir, vis)


@register("ir")
def _ir(params: NoParams, weights: Path | None, device: torch.device) -> FusionMethod:
    return _Pixelwise("ir", lambda a, b: a, params, device)


@register("vis")
def _vis(params: NoParams, weights: Path | None, device: torch.device) -> FusionMethod:
    # the visible image unchanged (its colour is restored by the luminance path)
    return _Pixelwise("vis", lambda a, b: b, params, device)


@register("mean")
def _mean(params: NoParams, weights: Path | None, device: torch.device) -> FusionMethod:
    return _Pixelwise("mean", lambda a, b: 0.5 * (a + b), params, device)


@register("max")
def _max(params: NoParams, weights: Path | None, device: torch.device) -> FusionMethod:
    return _Pixelwise("max", torch.maximum, params, device)


@register("weighted", params=WeightedParams)
def _weighted(params: WeightedParams, weights: Path | None, device: torch.device) -> FusionMethod:
    w = params.weight_ir
    return _Pixelwise("weighted", lambda a, b: w * a + (1.0 - w) * b, params, device)
