"""Discrete wavelet transform fusion (Li, Manjunath, Mitra 1995) with PyWavelets.

Both sources are decomposed with a 2-D DWT; the approximation bands are averaged and every
detail coefficient (horizontal, vertical, diagonal, all levels) is taken from the source with the
larger magnitude. The inverse transform may come back one pixel larger on odd sizes; it is cropped
to the input size. The transform runs on the CPU in float64 (PyWavelets), the batch in one call.
"""

from __future__ import annotations

import logging
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pywt
import torch

from fusion.registry import FusionMethod, register

log = logging.getLogger(__name__)


@dataclass
class DWTParams:
    """`fusion.dwt` in params.yaml.

    wavelet: any discrete wavelet name PyWavelets knows (`pywt.wavelist(kind="discrete")`),
    e.g. haar, db2, sym4, bior2.2. levels: decomposition levels (>= 1); capped per image at the
    deepest level the image size allows.
    """

    wavelet: str = "db2"
    levels: int = 3

    def validate(self) -> None:
        if self.levels < 1:
            raise ValueError(f"levels must be >= 1, got {self.levels}")
        if self.wavelet not in pywt.wavelist(kind="discrete"):
            raise ValueError(
                f"wavelet {self.wavelet!r} is not a discrete PyWavelets wavelet; use e.g. haar, db2, sym4, bior2.2"
            )


def _max_abs(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.where(np.abs(a) >= np.abs(b), a, b)


def dwt_fuse(
    ir: torch.Tensor, vis: torch.Tensor, wavelet: str = "db2", levels: int = 3
) -> torch.Tensor:
    """Fuse B x 1 x H x W sources in [0, 1]: mean approximation, max-abs details; clamped to [0, 1]."""
    h, w = ir.shape[-2:]
    wav = pywt.Wavelet(wavelet)
    deepest = pywt.dwt_max_level(min(h, w), wav.dec_len)
    level = max(1, min(levels, deepest))
    if level < levels:
        log.debug("dwt: %dx%d image allows %d levels, not %d", w, h, level, levels)
    a = ir.detach().cpu().double().numpy()
    b = vis.detach().cpu().double().numpy()
    with warnings.catch_warnings():
        # images smaller than the filter still get one level (boundary effects are expected)
        warnings.filterwarnings("ignore", message="Level value of", category=UserWarning)
        ca = pywt.wavedec2(a, wav, mode="symmetric", level=level, axes=(-2, -1))
        cb = pywt.wavedec2(b, wav, mode="symmetric", level=level, axes=(-2, -1))
    fused: list = [0.5 * (ca[0] + cb[0])]
    for da, db in zip(ca[1:], cb[1:], strict=True):
        fused.append(tuple(_max_abs(x, y) for x, y in zip(da, db, strict=True)))
    out = pywt.waverec2(fused, wav, mode="symmetric", axes=(-2, -1))[..., :h, :w]
    return (
        torch.from_numpy(np.ascontiguousarray(out))
        .to(device=ir.device, dtype=ir.dtype)
        .clamp(0.0, 1.0)
    )


class DWTFusion(FusionMethod):
    name = "dwt"

    def __init__(self, params: DWTParams, device: torch.device):
        super().__init__(params, device)
        self.cfg = params

    def fuse_luminance(self, ir: torch.Tensor, vis: torch.Tensor) -> torch.Tensor:
        return dwt_fuse(ir, vis, self.cfg.wavelet, self.cfg.levels)


@register("dwt", params=DWTParams)
def _dwt(params: DWTParams, weights: Path | None, device: torch.device) -> FusionMethod:
    return DWTFusion(params, device)
