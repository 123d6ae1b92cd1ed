"""The `coconet` fusion method and its trainer (the network lives in fusion/coconet/).

Parameters are the `fusion.coconet` section of params.yaml (fusion.coconet.config.CoCoNetConfig).
The fuse factory loads `--weights` (coconet.pt from training); without weights it builds an
untrained network with a loud warning and records `weights_loaded: false` in info().
"""

from __future__ import annotations

from pathlib import Path

import torch

from fusion.coconet.config import CoCoNetConfig
from fusion.registry import FusionMethod, register, register_trainer


@register("coconet", params=CoCoNetConfig)
def _coconet(params: CoCoNetConfig, weights: Path | None, device: torch.device) -> FusionMethod:
    from fusion.coconet.inference import CoCoNetMethod  # imported on use: `mmif methods` stays fast

    return CoCoNetMethod(params, weights, device)


@register_trainer("coconet")
def _train_coconet(data_root: Path, out_dir: Path, params: CoCoNetConfig) -> Path:
    from fusion.coconet.train import train_coconet

    return train_coconet(data_root, out_dir, params)
