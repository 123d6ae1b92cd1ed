"""What the fusion metrics are, for every stage that names them: their order, which way is
better, which depend on the convention and the range of values they can take.

The contract between the `fusion_metrics` stage (its CSV columns, `metrics.suite`) and the report
(table order, arrows, rounding), kept free of torch so that the report does not load the kernels.
Definitions: docs/METRICS.md.
"""

from __future__ import annotations

import math

#: every fusion metric the project computes, in the order tables use
METRIC_NAMES: tuple[str, ...] = (
    "EN", "SD", "SF", "AG", "MI", "SCD", "VIF", "Qabf", "SSIM", "PSNR", "MSE", "CC", "Nabf",
    "MS_SSIM", "FMI_pixel",
)  # fmt: skip
#: metrics where a smaller value means a better fusion (all others: larger is better)
LOWER_IS_BETTER: frozenset[str] = frozenset({"MSE", "Nabf"})
#: metrics whose value depends on `metrics.convention`
CONVENTION_DEPENDENT: frozenset[str] = frozenset({"MI", "Qabf", "SSIM", "PSNR"})

_UNIT = (0.0, 1.0)
#: the values each metric can take as computed here (sums of two similarities range over twice
#: the single one); None: unbounded
RANGES: dict[str, tuple[float, float] | None] = {
    "EN": (0.0, 8.0),
    "SD": (0.0, 127.5),
    "SF": (0.0, math.inf),
    "AG": (0.0, math.inf),
    "MI": (0.0, math.inf),
    "SCD": (-2.0, 2.0),
    "VIF": (0.0, math.inf),
    "Qabf": _UNIT,
    "SSIM": (-2.0, 2.0),
    "PSNR": None,
    "MSE": (0.0, math.inf),
    "CC": (-1.0, 1.0),
    "Nabf": (0.0, math.inf),
    "MS_SSIM": _UNIT,
    "FMI_pixel": _UNIT,
}
