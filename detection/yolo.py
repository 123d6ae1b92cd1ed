"""ultralytics trainer and validator subclasses used by `detection.train`.

Importing this module configures ultralytics to run offline (detection.offline) before ultralytics
itself is imported, so it is safe to import first.

- `OfflineDetectionTrainer` re-applies the offline AMP check in its own process, which matters
  for multi-GPU runs: ultralytics starts DDP workers as new processes that unpickle this class.
- `RecordingValidator` keeps every image's predictions in original-image pixels while
  ultralytics computes its metrics, so predictions.json holds exactly what was scored.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from detection.offline import import_ultralytics, patch_amp_check

import_ultralytics()

from ultralytics.models.yolo.detect import DetectionTrainer, DetectionValidator  # noqa: E402


class OfflineDetectionTrainer(DetectionTrainer):
    """DetectionTrainer whose AMP self-check never downloads weights (see detection.offline)."""

    def _setup_train(self, *args: Any, **kwargs: Any) -> Any:
        patch_amp_check()
        return super()._setup_train(*args, **kwargs)


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
