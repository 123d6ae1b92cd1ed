"""The `metrics` section of params.yaml."""

from __future__ import annotations

from dataclasses import dataclass

from metrics.inputs import CONVENTIONS
from metrics.suite import METRIC_NAMES
from mmif.layout import SPLITS


@dataclass
class MetricsConfig:
    """Fusion-metric evaluation settings.

    convention: "cddfuse" (numbers comparable with recent papers) or "standard" (textbook).
    split: which prepared split's fused images are scored (train, val or test).
    device: "cpu", "cuda" or "cuda:<i>".
    names: metrics to compute, a subset of `METRIC_NAMES` (None = all).
    batch_size: same-size images evaluated together.
    """

    convention: str = "cddfuse"
    split: str = "test"
    device: str = "cpu"
    names: list[str] | None = None
    batch_size: int = 8

    def validate(self) -> None:
        if self.convention not in CONVENTIONS:
            raise ValueError(
                f"convention: '{self.convention}' is not one of {', '.join(CONVENTIONS)}"
            )
        if self.split not in SPLITS:
            raise ValueError(f"split: '{self.split}' is not one of {', '.join(SPLITS)}")
        if self.names is not None:
            unknown = [n for n in self.names if n not in METRIC_NAMES]
            if unknown:
                raise ValueError(
                    f"names: unknown metric '{unknown[0]}'; available: {', '.join(METRIC_NAMES)}"
                )
        if self.batch_size < 1:
            raise ValueError(f"batch_size: must be at least 1, got {self.batch_size}")
