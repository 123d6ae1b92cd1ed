"""ultralytics trainer and validator subclasses used by `detection.train`.

Importing this module configures ultralytics to run offline (detection.offline) before ultralytics
itself is imported, so it is safe to import first.

- `OfflineDetectionTrainer` re-applies the offline AMP check in its own process, which matters
  for multi-GPU runs: ultralytics starts DDP workers as new processes that unpickle this class.
- `RecordingValidator` keeps every image's predictions in original-image pixels while
  ultralytics computes its metrics, so predictions.json holds exactly what was scored.
"""

from __future__ import annotations

import logging
import math
import os
import random
from pathlib import Path
from typing import Any

import numpy as np

from detection.offline import import_ultralytics, patch_amp_check
from mmif.augment import Appearance, jitter

import_ultralytics()

from ultralytics.models.yolo.detect import DetectionTrainer, DetectionValidator  # noqa: E402

log = logging.getLogger(__name__)

#: environment variable that carries `DetectConfig.ema_tau` to the trainer (and to the processes
#: ultralytics starts for multi-GPU training)
EMA_TAU_ENV = "MMIF_EMA_TAU"


def ema_decay(updates: int, tau: float, decay: float = 0.9999) -> float:
    """ultralytics' EMA decay after `updates` optimiser steps: decay * (1 - exp(-updates / tau))."""
    return decay * (1.0 - math.exp(-updates / tau))


class AppearanceTransform:
    """ultralytics transform: `mmif.augment.jitter` on a training image (BGR uint8 H x W x 3).

    Draws from Python's `random`, which ultralytics seeds with the training seed, so a CPU
    rerun draws the same changes.
    """

    def __init__(self, cfg: Appearance):
        self.cfg = cfg

    def __call__(self, labels: dict[str, Any]) -> dict[str, Any]:
        rng = np.random.default_rng(random.getrandbits(64))
        image = labels["img"].astype(np.float32) / 255.0
        out = jitter(image, self.cfg, rng)
        labels["img"] = np.clip(out * 255.0 + 0.5, 0, 255).astype(np.uint8)
        return labels


class OfflineDetectionTrainer(DetectionTrainer):
    """DetectionTrainer whose AMP self-check never downloads weights (see detection.offline),
    with the photometric augmentation of `DetectConfig.appearance` on its training images
    (handed over in the MMIF_APPEARANCE environment variable, which also reaches ultralytics'
    multi-GPU worker processes)."""

    def _setup_train(self, *args: Any, **kwargs: Any) -> Any:
        patch_amp_check()
        out = super()._setup_train(*args, **kwargs)
        tau = os.environ.get(EMA_TAU_ENV)
        if tau and self.ema is not None:
            # ultralytics' ramp (tau 2000 steps) leaves a run of a few hundred steps with almost
            # no averaging (decay 0.25 after 576 steps); a shorter ramp averages the last epochs
            self.ema.decay = lambda x, t=float(tau): ema_decay(x, t)
            log.debug("weight average: decay ramp over %s steps (detect ema_tau)", tau)
        return out

    def build_dataset(self, img_path: str, mode: str = "train", batch: int | None = None):  # noqa: ANN201
        dataset = super().build_dataset(img_path, mode, batch)
        cfg = Appearance.from_env()
        if mode == "train" and cfg is not None and dataset.augment:
            # before the last transform (Format, which turns the image into a tensor)
            log.info("photometric augmentation of the training images: %s", cfg)
            dataset.transforms.insert(
                len(dataset.transforms.transforms) - 1, AppearanceTransform(cfg)
            )
        return dataset


class RecordingValidator(DetectionValidator):
    """DetectionValidator that also records, per image, the scored predictions in pixels.

    After a run, `records` maps image stem -> {"width", "height", "pred"} where pred is an
    N x 6 array [cls, score, x1, y1, x2, y2] in the original image's pixels, sorted by score.
    """

    def init_metrics(self, model: Any) -> None:
        super().init_metrics(model)
        self.records: dict[str, dict[str, Any]] = {}

    def update_metrics(self, preds: list[dict[str, Any]], batch: dict[str, Any]) -> None:
        super().update_metrics(preds, batch)
        for si, pred in enumerate(preds):
            pbatch = self._prepare_batch(si, batch)
            scaled = self.scale_preds(self._prepare_pred(pred), pbatch)
            height, width = (int(v) for v in pbatch["ori_shape"][:2])
            rows = np.zeros((0, 6), dtype=np.float64)
            if scaled["cls"].shape[0]:
                rows = np.concatenate(
                    [
                        scaled["cls"].detach().float().cpu().numpy()[:, None],
                        scaled["conf"].detach().float().cpu().numpy()[:, None],
                        scaled["bboxes"].detach().float().cpu().numpy(),
                    ],
                    axis=1,
                ).astype(np.float64)
                rows = rows[np.argsort(-rows[:, 1], kind="stable")]
            self.records[Path(pbatch["im_file"]).stem] = {
                "width": width,
                "height": height,
                "pred": rows,
            }
