"""DenseFuse's feature fusion rules (Li & Wu 2019, section III-B), on B x C x H x W feature maps."""

from __future__ import annotations

import torch

from fusion.filters import box_mean


def fuse_addition(f_ir: torch.Tensor, f_vis: torch.Tensor) -> torch.Tensor:
    """Element-wise sum of the two feature maps."""
    return f_ir + f_vis


def fuse_l1_norm(f_ir: torch.Tensor, f_vis: torch.Tensor, radius: int = 1) -> torch.Tensor:
    """Weighted average by activity: the l1 norm over channels, averaged in a (2 r + 1)^2 window.

    Where both activities are zero the two maps get equal weights.
    """
    act = torch.stack([f_ir.abs().sum(1, keepdim=True), f_vis.abs().sum(1, keepdim=True)])
    act = box_mean(act.flatten(0, 1), radius).view_as(act)
    total = act.sum(0)
    w_ir = torch.where(total > 0, act[0] / total.clamp(min=1e-12), torch.full_like(total, 0.5))
    return w_ir * f_ir + (1.0 - w_ir) * f_vis


def fuse_features(f_ir: torch.Tensor, f_vis: torch.Tensor, rule: str) -> torch.Tensor:
    """Apply the rule named in params ("addition" or "l1_norm")."""
    if rule == "addition":
        return fuse_addition(f_ir, f_vis)
    if rule == "l1_norm":
        return fuse_l1_norm(f_ir, f_vis)
    raise ValueError(f"unknown DenseFuse fusion rule {rule!r}; use 'addition' or 'l1_norm'")
