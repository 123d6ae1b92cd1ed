"""Edge-based metrics of Xydeas and Petrovic: Qabf (edge information transferred) and Nabf
(artefacts added, Shreyamsha Kumar's modified measure).

Both metrics start from the Sobel strength g and orientation alpha of every pixel of all three
images and the strength ratio min(gS, gF) / max(gS, gF) of every (source, fused) pair. Qabf pads
the border with zeros, Nabf mirrors it, so the two differ only on the one-pixel frame. The
interior is processed strip by strip of rows (its maps stay in cache), and when the suite asks
for both metrics their terms are summed in the same pass; the frame is computed per padding.
Nabf's Sobel / 8 changes neither the ratio nor the orientation, and its strength is exactly
g / 8 (a power of two).

Sobel responses of grey levels are integers, exact in float32; the rest of both metrics is
computed in float32 too (the reference evaluator itself works in float32) and summed in float64.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch
import torch.nn.functional as F

from metrics.filters import (
    HALF_PI,
    sobel_frame,
    sobel_interior,
    sobel_orientation,
    strip_rows,
)
from metrics.inputs import Convention, Triple, check_convention, per_pair_sum, row_sums

#: Nabf weighs by (g / 8)^1.5 where g / 8 >= 2. g = sqrt(integer), so g / 8 >= 2 exactly where
#: g^1.5 >= 16^1.5 = 64; the next smaller strength, sqrt(255), gives 63.81
_NABF_WEIGHT_THRESHOLD = 63.9


class _Edges(NamedTuple):
    """Edge maps of ir, vis and fused stacked (3B x ...) and the ratios of the pairs (2B x ...)."""

    g: torch.Tensor  # Sobel strength sqrt(sx^2 + sy^2)
    alpha: torch.Tensor  # arctan(sy / sx), pi/2 where sx == 0
    ratio: torch.Tensor  # min(gS, gF) / max(gS, gF), 0 where both are 0


def _pairs(x: torch.Tensor, bsz: int) -> tuple[torch.Tensor, torch.Tensor]:
    """3B x ... -> sources 2 x B x ... (ir then vis) and fused 1 x B x ... (views)."""
    return x[: 2 * bsz].view(2, bsz, *x.shape[1:]), x[2 * bsz :].view(1, bsz, *x.shape[1:])


def _edges(sx: torch.Tensor, sy: torch.Tensor, bsz: int) -> _Edges:
    g = sx.square().addcmul_(sy, sy).sqrt_()  # the squares are integers below 2**24: exact
    alpha = sobel_orientation(sx, sy)
    g_s, g_f = _pairs(g, bsz)
    hi = torch.maximum(g_s, g_f).clamp_min_(torch.finfo(g.dtype).tiny)
    ratio = torch.minimum(g_s, g_f).div_(hi).view(2 * bsz, *g.shape[1:])
    return _Edges(g, alpha, ratio)


def _scalar(value: float, like: torch.Tensor) -> torch.Tensor:
    return torch.tensor(value, dtype=like.dtype, device=like.device)


def _qabf_sums(e: _Edges, bsz: int, convention: Convention) -> tuple[torch.Tensor, torch.Tensor]:
    """(sum of Q gS + Q' gS', sum of gS + gS') per image, float64."""
    g_s, g_f = _pairs(e.g, bsz)
    a_s, a_f = _pairs(e.alpha, bsz)
    ratio = e.ratio.view(g_s.shape)
    # Qg = 0.9994 / (1 + exp(-15 (G - 0.5))), Qa = 0.9879 / (1 + exp(-22 (A - 0.8))) with
    # A = 1 - |aS - aF| / (pi / 2); the constant factors are applied to the sums
    q = torch.add(_scalar(-7.5, ratio), ratio, alpha=15.0)
    if convention == "cddfuse":
        # equal strengths (ratio exactly 1, where floor(ratio) = 1): the CDDFuse evaluator uses
        # G = gF itself, not 1
        q.addcmul_(ratio.floor(), g_f.mul(15.0).sub_(15.0))
    # (`standard`: G = 1 where the strengths are equal, which the ratio is already, except
    # where both are 0, whose weight gS is 0)
    q.sigmoid_()
    q_a = torch.sub(a_s, a_f).abs_()
    q_a = torch.add(_scalar(22.0 * 0.2, q_a), q_a, alpha=-22.0 / HALF_PI).sigmoid_()
    q.mul_(q_a).mul_(g_s)
    num = per_pair_sum(row_sums(q.view(2 * bsz, *q.shape[2:])), bsz) * (0.9994 * 0.9879)
    return num, per_pair_sum(row_sums(e.g[: 2 * bsz]), bsz)


def _qabf(t: Triple, convention: Convention = "cddfuse") -> torch.Tensor:
    check_convention(convention)
    num, den = _edge_sums(t, f"qabf_{convention}")
    return num / den


def _nabf_sums(e: _Edges, bsz: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(sum of artefact losses, sum of weights) per image, float64, both times 8^1.5."""
    # MATLAB atan(gv / gh): 0 on flat pixels (g = 0), +-pi/2 where only gh is 0 (the sign does
    # not matter: the orientation term below only sees | |aS - aF| - pi/2 |)
    alpha = e.alpha * torch.sign(e.g)
    a_s, a_f = _pairs(alpha, bsz)
    g_s, g_f = _pairs(e.g, bsz)
    # Qg = 0.9999 / (1 + exp(-19 (G - 0.5))), Qa = 0.9995 / (1 + exp(-22 (A - 0.5))) with
    # A = | |aS - aF| - pi/2 | / (pi/2), preservation sqrt(Qg Qa)
    ratio = e.ratio.view(g_s.shape)
    q = torch.add(_scalar(-9.5, ratio), ratio, alpha=19.0).sigmoid_()
    q_a = torch.sub(a_s, a_f).abs_().sub_(HALF_PI).abs_()
    q.mul_(torch.add(_scalar(-11.0, q_a), q_a, alpha=22.0 / HALF_PI).sigmoid_()).sqrt_()
    # weights (gS / 8)^1.5 where gS / 8 >= 2, else 0.001: both sums are taken times 8^1.5
    # (which cancels in the ratio), so the weight is gS^1.5 where gS^1.5 >= 64, else 0.001 * 8^1.5
    weight = F.threshold_(g_s.sqrt().mul_(g_s), _NABF_WEIGHT_THRESHOLD, 0.001 * 8.0**1.5)
    # loss (1 - sqrt(0.9999 * 0.9995) sqrt(Qg Qa)) weight, summed over the two sources
    loss = torch.addcmul(weight, weight, q, value=-math.sqrt(0.9999 * 0.9995)).sum(0)
    # only pixels where F's edge is stronger than both sources' count
    artefact = torch.sub(g_f[0], torch.maximum(g_s[0], g_s[1])).clamp_min_(0.0).sign_()
    num = row_sums(loss.mul_(artefact))
    return num, per_pair_sum(row_sums(weight.view(2 * bsz, *weight.shape[2:])), bsz)


def _nabf(t: Triple) -> torch.Tensor:
    num, den = _edge_sums(t, "nabf")
    return num / den


def _edge_sums(t: Triple, key: str) -> tuple[torch.Tensor, torch.Tensor]:
    """(numerator, denominator) sums per image of "qabf_<convention>" or "nabf".

    The interior is processed strip by strip of rows (Sobel responses, strengths, orientations,
    ratios and the metric terms of a strip stay in cache). When the suite asks for both metrics
    (`Triple.requested`), both are summed in the same pass and cached.
    """
    if not t.is_cached(key):
        keys = {key}
        if "Qabf" in t.requested:
            keys.add(f"qabf_{t.convention}")
        if "Nabf" in t.requested:
            keys.add("nabf")
        for k, sums in _compute_edge_sums(t, sorted(k for k in keys if not t.is_cached(k))).items():
            t.cached(k, lambda sums=sums: sums)
    return t.cached(key, lambda: _compute_edge_sums(t, [key])[key])


def _terms(e: _Edges, bsz: int, key: str) -> torch.Tensor:
    """2 x B: the (numerator, denominator) sums of `key` over the pixels of `e`."""
    if key == "nabf":
        return torch.stack(_nabf_sums(e, bsz))
    return torch.stack(_qabf_sums(e, bsz, key.removeprefix("qabf_")))  # type: ignore[arg-type]


def _compute_edge_sums(t: Triple, keys: list[str]) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    bsz = t.batch_size
    levels = t.levels32()
    h, w = levels.shape[-2:]
    totals = {k: torch.zeros(2, bsz, dtype=torch.float64, device=levels.device) for k in keys}
    strip = strip_rows(2 * bsz * (w - 2), levels.device)
    for top in range(0, h - 2, strip):
        e = _edges(*sobel_interior(levels[:, 0, top : top + strip + 2]), bsz)
        for k in keys:
            totals[k] += _terms(e, bsz, k)
    # the one-pixel frame: zero padding for Qabf, mirrored for Nabf
    for padding in ("zeros", "reflect"):
        frame_keys = [k for k in keys if (k == "nabf") == (padding == "reflect")]
        if frame_keys:
            e = _edges(*sobel_frame(levels, padding), bsz)
            for k in frame_keys:
                totals[k] += _terms(e, bsz, k)
    return {k: (v[0], v[1]) for k, v in totals.items()}


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
