"""`report` section of params.yaml."""

from __future__ import annotations

from dataclasses import dataclass, field

from mmif.errors import ConfigError


@dataclass
class ReportConfig:
    """Settings of the comparison report.

    bootstrap_samples: resampled test sets per comparison (paired bootstrap over images).
    alpha: significance level of the two-sided bootstrap test; gains with p < alpha are marked.
    seed: seed of the bootstrap resampling and of the choice of qualitative-grid images.
    ci_level: confidence level of the t-intervals over seeds and of the bootstrap intervals.
    n_grid_images: test images shown in the qualitative grid (0: no grid).
    baselines: methods every other method is compared with (usually the two sources).
    conf_threshold: minimum score of a detection drawn in the qualitative grid, in [0, 1].
    grid_seed_run: which detection seed's predictions the grid draws (lowest seed if absent).
    split: dataset split of the qualitative grid (the tasks are evaluated on `test`).
    max_dets: predictions per image and class kept for AP; 300 as the detection stage's
        torchmetrics cross-check (detection.evaluate.coco_map) and ultralytics' max_det, so the
        recomputed mAP50 equals its tm_mAP50 (the COCO evaluator's own default is 100).
    jobs: processes that write the figure files (PNG and SVG) at the end of the report; 1 writes
        them in the report's own process. The files are the same bytes either way.
    """

    bootstrap_samples: int = 1000
    alpha: float = 0.05
    seed: int = 0
    ci_level: float = 0.95
    n_grid_images: int = 4
    baselines: list[str] = field(default_factory=lambda: ["vis", "ir"])
    conf_threshold: float = 0.25
    grid_seed_run: int = 0
    split: str = "test"
    max_dets: int = 300
    jobs: int = 2

    def validate(self) -> None:
        if self.bootstrap_samples < 0:
            raise ConfigError(
                f"bootstrap_samples: {self.bootstrap_samples} < 0; use e.g. 1000 (0 skips the test)"
            )
        if not 0.0 < self.alpha < 1.0:
            raise ConfigError(f"alpha: {self.alpha} must lie in (0, 1), e.g. 0.05")
        if not 0.0 < self.ci_level < 1.0:
            raise ConfigError(f"ci_level: {self.ci_level} must lie in (0, 1), e.g. 0.95")
        if self.n_grid_images < 0:
            raise ConfigError(f"n_grid_images: {self.n_grid_images} < 0")
        if not 0.0 <= self.conf_threshold <= 1.0:
            raise ConfigError(f"conf_threshold: {self.conf_threshold} must lie in [0, 1]")
        if self.jobs < 1:
            raise ConfigError(f"jobs: {self.jobs} < 1; use 2 (two processes) or 1")
        if self.max_dets < 1:
            raise ConfigError(
                f"max_dets: {self.max_dets} < 1; use 300 (the detection stage's value)"
            )
