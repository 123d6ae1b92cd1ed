"""Pixel-wise baselines: one source alone, mean, max and a fixed weighted average."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from fusion.registry import FusionMethod, check_params, register
from mmif.config import ConfigError


class _Pixelwise(FusionMethod):
    def __init__(self, name: str, fn, params: dict[str, Any], device: torch.device):
        super().__init__(params, device)
        self.name = name
        self._fn = fn

    def fuse_luminance(self, ir: torch.Tensor, vis: torch.Tensor) -> torch.Tensor:
        return self._fn(ir, vis)


@register("ir")
def _ir(params: dict[str, Any], weights: Path | None, device: torch.device) -> FusionMethod:
    check_params("ir", params)
    return _Pixelwise("ir", lambda a, b: a, params, device)


@register("vis")
def _vis(params: dict[str, Any], weights: Path | None, device: torch.device) -> FusionMethod:
    check_params("vis", params)
    # the visible image unchanged (its colour is restored by the luminance path)
    return _Pixelwise("vis", lambda a, b: b, params, device)


@register("mean")
def _mean(params: dict[str, Any], weights: Path | None, device: torch.device) -> FusionMethod:
    check_params("mean", params)
    return _Pixelwise("mean", lambda a, b: 0.5 * (a + b), params, device)


@register("max")
def _max(params: dict[str, Any], weights: Path | None, device: torch.device) -> FusionMethod:
    check_params("max", params)
    return _Pixelwise("max", torch.maximum, params, device)


@register("weighted")
def _weighted(params: dict[str, Any], weights: Path | None, device: torch.device) -> FusionMethod:
    check_params("weighted", params, ("weight_ir",))
    value = params.get("weight_ir", 0.5)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= value <= 1.0:
        raise ConfigError(f"fusion.weighted.weight_ir: must be a number in [0, 1], got {value!r}")
    w = float(value)
    return _Pixelwise("weighted", lambda a, b: w * a + (1.0 - w) * b, params, device)
