"""Edge-based metrics of Xydeas and Petrovic: Qabf (edge information transferred) and Nabf
(artefacts added, Shreyamsha Kumar's modified measure).

The Sobel responses of all three images are computed once per padding and shared through the
`Triple` cache.
"""

from __future__ import annotations

import torch

from fusion.metrics.filters import HALF_PI, arctan_ratio, sobel
from fusion.metrics.inputs import Convention, Triple, check_convention


def _gradients(t: Triple, padding: str) -> tuple[torch.Tensor, torch.Tensor]:
    """Sobel (sx, sy) of ir, vis and fused stacked as 3B x 1 x H x W, float32.

    Sobel responses of grey levels are integers, exact in float32; the rest of both metrics is
    computed in float32 too (the reference evaluator itself works in float32) and summed in float64.
    """
    return t.cached(f"sobel_{padding}", lambda: sobel(t.levels32(), padding))


def _split3(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    a, b, f = x.chunk(3)
    return a, b, f


def _qabf(t: Triple, convention: Convention = "cddfuse") -> torch.Tensor:
    check_convention(convention)
    sx, sy = _gradients(t, "zeros")
    g = torch.sqrt(sx * sx + sy * sy)
    alpha = arctan_ratio(sy, sx, HALF_PI)
    g_a, g_b, g_f = _split3(g)
    a_a, a_b, a_f = _split3(alpha)

    def preservation(g_s: torch.Tensor, a_s: torch.Tensor) -> torch.Tensor:
        lo, hi = torch.minimum(g_s, g_f), torch.maximum(g_s, g_f)
        # equal strengths: the textbook ratio is 1; the CDDFuse evaluator uses gF itself
        same = g_f if convention == "cddfuse" else torch.ones_like(g_f)
        ratio = torch.where(g_s == g_f, same, lo / torch.where(hi > 0, hi, torch.ones_like(hi)))
        orient = 1.0 - torch.abs(a_s - a_f) / HALF_PI
        q_g = 0.9994 / (1.0 + torch.exp(-15.0 * (ratio - 0.5)))
        q_a = 0.9879 / (1.0 + torch.exp(-22.0 * (orient - 0.8)))
        return q_g * q_a

    num = preservation(g_a, a_a) * g_a + preservation(g_b, a_b) * g_b
    return num.flatten(1).sum(1, dtype=torch.float64) / (g_a + g_b).flatten(1).sum(
        1, dtype=torch.float64
    )


def _nabf(t: Triple) -> torch.Tensor:
    sx, sy = _gradients(t, "reflect")
    sx, sy = sx / 8.0, sy / 8.0
    g = torch.sqrt(sx * sx + sy * sy)
    # MATLAB atan(gv / gh): 0 on flat pixels, +-pi/2 where only gh is 0 (the sign does not
    # matter: the orientation term below only sees | |aS - aF| - pi/2 |)
    alpha = torch.where((sx == 0) & (sy == 0), torch.zeros_like(sx), arctan_ratio(sy, sx, HALF_PI))
    g_a, g_b, g_f = _split3(g)
    a_a, a_b, a_f = _split3(alpha)

    def preservation(g_s: torch.Tensor, a_s: torch.Tensor) -> torch.Tensor:
        lo, hi = torch.minimum(g_s, g_f), torch.maximum(g_s, g_f)
        ratio = torch.where(
            lo > 0, lo / torch.where(hi > 0, hi, torch.ones_like(hi)), torch.zeros_like(lo)
        )
        orient = torch.abs(torch.abs(a_s - a_f) - HALF_PI) / HALF_PI
        q_g = 0.9999 / (1.0 + torch.exp(-19.0 * (ratio - 0.5)))
        q_a = 0.9995 / (1.0 + torch.exp(-22.0 * (orient - 0.5)))
        return torch.sqrt(q_g * q_a)

    def weight(g_s: torch.Tensor) -> torch.Tensor:
        return torch.where(g_s >= 2.0, g_s.pow(1.5), torch.full_like(g_s, 0.001))

    w_a, w_b = weight(g_a), weight(g_b)
    artefact = (g_f > g_a) & (g_f > g_b)
    loss = (1.0 - preservation(g_a, a_a)) * w_a + (1.0 - preservation(g_b, a_b)) * w_b
    num = torch.where(artefact, loss, torch.zeros_like(loss)).flatten(1).sum(1, dtype=torch.float64)
    return num / (w_a + w_b).flatten(1).sum(1, dtype=torch.float64)


def qabf(
    ir: torch.Tensor, vis: torch.Tensor, fused: torch.Tensor, convention: Convention = "cddfuse"
) -> torch.Tensor:
    """Edge information transferred from the sources to F (Xydeas-Petrovic Q^{AB/F}), 0..~1.

    Sobel by 'same' convolution with zero padding; `standard` sets the strength ratio to 1
    where gA == gF, `cddfuse` keeps that evaluator's gF there (see METRICS.md).
    """
    return _qabf(Triple.from_unit(ir, vis, fused), convention)


def nabf(ir: torch.Tensor, vis: torch.Tensor, fused: torch.Tensor) -> torch.Tensor:
    """Artefacts introduced into F (modified N^{AB/F}, Shreyamsha Kumar), >= 0, lower is better.

    Sobel / 8 on a mirrored border; only pixels where F's edge is stronger than both sources'
    count; weights g^1.5 where g >= 2, else 0.001.
    """
    return _nabf(Triple.from_unit(ir, vis, fused))
