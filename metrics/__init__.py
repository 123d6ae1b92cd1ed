"""Fusion quality metrics (METRICS.md): pure batched functions, a collection, folder evaluation.

Every function takes B x C x H x W float tensors in [0, 1] on any device (C = 1, or 3 for colour,
compared by its rounded BT.601 luminance), works on 8-bit grey levels and returns a (B,) tensor.
`compute_metrics` evaluates any subset sharing intermediates; `FusionMetricCollection`
accumulates per-image values; `evaluate_folders` scores folders of images matched by stem.

Families: information (EN, MI, FMI_pixel), statistics (SD, SF, AG, CC, SCD, MSE, PSNR),
structural (SSIM, MS_SSIM), visual_information (VIF), gradient (Qabf, Nabf).
"""

from metrics.collection import FusionMetricCollection, table_means
from metrics.folders import evaluate_folders
from metrics.gradient import nabf, qabf
from metrics.information import en, fmi_pixel, mi
from metrics.inputs import CONVENTIONS, Convention, grey_levels
from metrics.statistics import ag, cc, mse, psnr, scd, sd, sf
from metrics.structural import ms_ssim, ssim
from metrics.suite import (
    CONVENTION_DEPENDENT,
    LOWER_IS_BETTER,
    METRIC_NAMES,
    compute_metrics,
)
from metrics.visual_information import vif

__all__ = [
    "CONVENTIONS",
    "CONVENTION_DEPENDENT",
    "Convention",
    "FusionMetricCollection",
    "LOWER_IS_BETTER",
    "METRIC_NAMES",
    "ag",
    "cc",
    "compute_metrics",
    "en",
    "evaluate_folders",
    "fmi_pixel",
    "grey_levels",
    "mi",
    "ms_ssim",
    "mse",
    "nabf",
    "psnr",
    "qabf",
    "scd",
    "sd",
    "sf",
    "table_means",
    "ssim",
    "vif",
]
