"""The metric suite: names, conventions and `compute_metrics`, which shares intermediates.

Names follow METRICS.md and are the column names of every table and CSV. Each name maps to a
function of a `Triple` (grey levels plus a cache), so the Sobel gradients, the stacked
(source, fused) pairs and the MSE are computed once however many metrics ask for them.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch

from metrics import gradient, information, statistics, structural, visual_information
from metrics.inputs import CONVENTIONS, Convention, Triple, check_convention
from mmif.errors import InputError
from mmif.metric_catalog import CONVENTION_DEPENDENT, LOWER_IS_BETTER
from mmif.metric_catalog import METRIC_NAMES as CATALOG_NAMES

MetricFn = Callable[[Triple, Convention], torch.Tensor]

_REGISTRY: dict[str, MetricFn] = {
    "EN": lambda t, c: information._en(t),
    "SD": lambda t, c: statistics._sd(t),
    "SF": lambda t, c: statistics._sf(t),
    "AG": lambda t, c: statistics._ag(t),
    "MI": information._mi,
    "SCD": lambda t, c: statistics._scd(t),
    "VIF": lambda t, c: visual_information._vif(t),
    "Qabf": gradient._qabf,
    "SSIM": structural._ssim,
    "PSNR": statistics._psnr,
    "MSE": lambda t, c: statistics._mse(t),
    "CC": lambda t, c: statistics._cc(t),
    "Nabf": lambda t, c: gradient._nabf(t),
    "MS_SSIM": lambda t, c: structural._ms_ssim(t),
    "FMI_pixel": lambda t, c: information._fmi_pixel(t),
}

#: every metric, in the order tables use (mmif.metric_catalog, which the report reads)
METRIC_NAMES: list[str] = list(CATALOG_NAMES)
assert set(METRIC_NAMES) == set(_REGISTRY), "mmif.metric_catalog and the registry disagree"


def resolve_names(names: Sequence[str] | None) -> list[str]:
    """Validate metric names (None = all), keeping the caller's order and dropping repeats."""
    if names is None:
        return list(METRIC_NAMES)
    if isinstance(names, str):
        names = [names]
    unknown = [n for n in names if n not in _REGISTRY]
    if unknown:
        raise InputError(
            f"unknown fusion metric '{unknown[0]}'; available: {', '.join(METRIC_NAMES)}"
        )
    return list(dict.fromkeys(names))


def compute_on_triple(
    triple: Triple, names: Sequence[str] | None = None, convention: Convention = "cddfuse"
) -> dict[str, torch.Tensor]:
    """Metrics of a prepared `Triple`: name -> (B,) float64 tensor on the triple's device."""
    check_convention(convention)
    names = resolve_names(names)
    triple.requested, triple.convention = frozenset(names), convention
    return {name: _REGISTRY[name](triple, convention).to(torch.float64) for name in names}


@torch.inference_mode()
def compute_metrics(
    ir: torch.Tensor,
    vis: torch.Tensor,
    fused: torch.Tensor,
    names: Sequence[str] | None = None,
    convention: Convention = "cddfuse",
) -> dict[str, torch.Tensor]:
    """Fusion metrics of a batch of triples.

    ir, vis, fused: B x C x H x W float tensors in [0, 1] (C = 1 or 3; colour is compared by its
    rounded BT.601 luminance), same B, H, W, on one device. names: subset of `METRIC_NAMES`
    (None = all). convention: "cddfuse" (default) or "standard", see METRICS.md.
    Returns name -> (B,) float64 tensor, on the inputs' device, in the order of `names`.
    """
    check_convention(convention)
    names = resolve_names(names)
    return compute_on_triple(Triple.from_unit(ir, vis, fused), names, convention)


__all__ = [
    "CONVENTIONS",
    "CONVENTION_DEPENDENT",
    "LOWER_IS_BETTER",
    "METRIC_NAMES",
    "compute_metrics",
    "compute_on_triple",
    "resolve_names",
]
