"""Registry entries for DenseFuse: the "densefuse" fusion method and its pipeline trainer."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import torch

from fusion.densefuse.config import DEFAULT_RULE, DenseFuseConfig
from fusion.densefuse.rules import fuse_features
from fusion.densefuse.train import load_densefuse, new_model, train_densefuse
from fusion.registry import FusionMethod, register, register_trainer

log = logging.getLogger(__name__)


class DenseFuseFusion(FusionMethod):
    """Encode both sources, fuse the features by `fusion_rule`, decode.

    Without weights the network is randomly initialised (seeded): the output is then meaningless,
    which is logged as a warning and recorded in `info()`.
    """

    name = "densefuse"
    trainable = True

    def __init__(self, cfg: DenseFuseConfig, weights: Path | None, device: torch.device):
        super().__init__(cfg, device)
        self.weights = Path(weights) if weights else None
        if self.weights is None:
            log.warning(
                "DENSEFUSE HAS NO WEIGHTS: using an untrained, randomly initialised network; its fused "
                "images mean nothing. Train it (`mmif train --method densefuse`) and pass --weights."
            )
            self.model = new_model(cfg.seed).to(self.device).eval()
            trained_cfg: dict[str, Any] = {}
        else:
            self.model, trained_cfg = load_densefuse(self.weights, self.device)
        # the rule is a fusion-time choice: params win, then what the weights were trained with
        self.fusion_rule = cfg.fusion_rule or trained_cfg.get("fusion_rule") or DEFAULT_RULE
        self.trained_config = trained_cfg

    @torch.inference_mode()
    def fuse_luminance(self, ir: torch.Tensor, vis: torch.Tensor) -> torch.Tensor:
        n = ir.shape[0]
        feats = self.model.encode(torch.cat([ir, vis]).to(self.device))
        return self.model.decode(fuse_features(feats[:n], feats[n:], self.fusion_rule)).clamp(
            0.0, 1.0
        )

    def info(self) -> dict[str, Any]:
        out = {
            **super().info(),
            "fusion_rule": self.fusion_rule,
            "weights": str(self.weights) if self.weights else None,
            "trained": self.weights is not None,
        }
        if self.weights is None:
            out["warning"] = "untrained: no weights were given, the network is randomly initialised"
        return out


@register("densefuse", params=DenseFuseConfig)
def _densefuse(params: DenseFuseConfig, weights: Path | None, device: torch.device) -> FusionMethod:
    return DenseFuseFusion(params, weights, device)


@register_trainer("densefuse")
def _train_densefuse(data_root: Path, out_dir: Path, params: DenseFuseConfig) -> Path:
    return train_densefuse(data_root, out_dir, params)
