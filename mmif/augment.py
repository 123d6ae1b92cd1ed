"""Photometric (appearance) augmentation of the shared task models' training images.

The shared detector and segmenter of the `frozen` and `finetune` protocols learn from the
source images only (infrared and visible as separate samples), then score every method's fused
images, whose contrast, brightness curve, sharpness and noise differ from both sources. A model
that saw such variation in training reacts to a fusion's look less idiosyncratically, so the
within-seed differences between methods vary less from seed to seed.

Every change here acts on one image alone and never mixes the two modalities: none of them is a
fusion rule (blending infrared and visible with a random weight would be one, and would favour
the methods that blend), so no method's images are imitated.

- contrast c: intensities scaled about the image mean by a factor drawn from [1 - c, 1 + c];
- gamma g: intensities raised to exp(u), u drawn from [-g, g];
- blur p: with probability p a Gaussian blur of sigma drawn from [0.5, 1.5] pixels;
- noise s: additive Gaussian noise of std drawn from [0, s] (intensity units in [0, 1]), the
  same for every channel (a grey image stays grey).
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import asdict, dataclass

import numpy as np

#: environment variable that carries the detector's Appearance into ultralytics' dataset
#: builder (also in the processes ultralytics starts for multi-GPU training)
APPEARANCE_ENV = "MMIF_APPEARANCE"


@dataclass(frozen=True)
class Appearance:
    """Strengths of the photometric changes (0 turns one off); see the module docstring."""

    contrast: float = 0.0
    gamma: float = 0.0
    blur: float = 0.0
    noise: float = 0.0

    def validate(self, where: str = "appearance") -> None:
        for key in ("contrast", "gamma", "blur", "noise"):
            value = getattr(self, key)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
                raise ValueError(f"{where}.{key}: expected a number >= 0, got {value!r}")
        if self.contrast >= 1:
            raise ValueError(f"{where}.contrast: must be below 1, got {self.contrast}")
        if self.blur > 1:
            raise ValueError(f"{where}.blur: a probability in [0, 1], got {self.blur}")

    @classmethod
    def from_mapping(cls, value: object, where: str = "appearance") -> Appearance:
        """From a params.yaml mapping (None: all off); ValueError naming `where` if malformed."""
        value = value or {}
        if not isinstance(value, dict):
            raise ValueError(
                f"{where}: expected a mapping such as {{contrast: 0.3}}, got {value!r}"
            )
        unknown = sorted(set(value) - set(cls.__dataclass_fields__))
        if unknown:
            known = ", ".join(cls.__dataclass_fields__)
            raise ValueError(f"{where}.{unknown[0]}: unknown key; the keys are {known}")
        return cls(**value)

    @property
    def active(self) -> bool:
        return any((self.contrast, self.gamma, self.blur, self.noise))

    def facts(self) -> dict[str, float] | None:
        """The strengths for a run's metadata (metrics.json); None when every change is off."""
        return asdict(self) if self.active else None

    @staticmethod
    def describe(facts: dict[str, float] | None) -> str:
        """One line for a report from `facts()` (as read back from a metrics.json)."""
        if not facts:
            return "none"
        return ", ".join(f"{key} {value:g}" for key, value in facts.items() if value)

    def to_env(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_env(cls) -> Appearance | None:
        text = os.environ.get(APPEARANCE_ENV)
        if not text:
            return None
        value = cls(**json.loads(text))
        return value if value.active else None


def jitter(image: np.ndarray, cfg: Appearance, rng: np.random.Generator) -> np.ndarray:
    """A photometric variant of `image` (H x W x C float32 in [0, 1]); the input is not changed.

    Draws from `rng` in a fixed order whatever is switched off, so turning one change on or off
    does not alter the draws of the others.
    """
    u = [float(v) for v in rng.uniform(-1.0, 1.0, size=3)]
    apply_blur = rng.random() < cfg.blur
    sigma = 0.5 + float(rng.random())
    noise_std = cfg.noise * float(rng.random())
    noise_seed = int(rng.integers(2**31))
    out = image.astype(np.float32, copy=True)
    if cfg.contrast:
        mean = float(out.mean())
        out = mean + (1.0 + cfg.contrast * u[0]) * (out - mean)
        np.clip(out, 0.0, 1.0, out=out)
    if cfg.gamma:
        np.power(out, math.exp(cfg.gamma * u[1]), out=out)
    if apply_blur:
        import cv2

        out = cv2.GaussianBlur(out, (0, 0), sigmaX=sigma, borderType=cv2.BORDER_REFLECT)
        if out.ndim == 2:
            out = out[:, :, None]
    if noise_std > 0:
        noise = np.random.default_rng(noise_seed).normal(0.0, noise_std, size=out.shape[:2])
        out = out + noise[:, :, None].astype(np.float32)
        np.clip(out, 0.0, 1.0, out=out)
    return out
