"""Colour handling shared by every fusion method: fuse the luminance, keep the chrominance.

Both CoCoNet's MRI-PET/SPECT procedure and the usual infrared-visible practice fuse the Y channel
of the colour source with the grey source and put the colour source's Cb/Cr back. BT.601
full-range (JPEG) YCbCr is used, with values in [0, 1] and chroma centred at 0.5.
"""

from __future__ import annotations

import torch


def rgb_to_ycbcr(rgb: torch.Tensor) -> torch.Tensor:
    """B x 3 x H x W RGB in [0, 1] -> B x 3 x H x W YCbCr in [0, 1]."""
    r, g, b = rgb[:, 0:1], rgb[:, 1:2], rgb[:, 2:3]
    y = 0.299 * r + 0.587 * g + 0.114 * b
    cb = (b - y) * 0.564 + 0.5
    cr = (r - y) * 0.713 + 0.5
    return torch.cat([y, cb, cr], dim=1)


def ycbcr_to_rgb(ycc: torch.Tensor) -> torch.Tensor:
    """Inverse of `rgb_to_ycbcr`, clamped to [0, 1]."""
    y, cb, cr = ycc[:, 0:1], ycc[:, 1:2] - 0.5, ycc[:, 2:3] - 0.5
    r = y + 1.403 * cr
    g = y - 0.714 * cr - 0.344 * cb
    b = y + 1.773 * cb
    return torch.cat([r, g, b], dim=1).clamp_(0.0, 1.0)


def luminance(x: torch.Tensor) -> torch.Tensor:
    """B x 1 or B x 3 x H x W -> B x 1 x H x W luminance."""
    if x.shape[1] == 1:
        return x
    if x.shape[1] != 3:
        raise ValueError(f"expected 1 or 3 channels, got {x.shape[1]}")
    return rgb_to_ycbcr(x)[:, :1]


def split_colour(
    ir: torch.Tensor, vis: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
    """Luminance of both sources and the chroma (B x 2 x H x W) of the colour one, if any.

    The visible image is the colour source when it has colour; otherwise the infrared one (e.g.
    PET given first).
    """
    chroma = None
    if vis.shape[1] == 3:
        chroma = rgb_to_ycbcr(vis)[:, 1:]
    elif ir.shape[1] == 3:
        chroma = rgb_to_ycbcr(ir)[:, 1:]
    return luminance(ir), luminance(vis), chroma


def merge_colour(fused_y: torch.Tensor, chroma: torch.Tensor | None) -> torch.Tensor:
    """Put the chroma back onto a fused luminance; grey stays B x 1 x H x W."""
    if chroma is None:
        return fused_y
    return ycbcr_to_rgb(torch.cat([fused_y, chroma.to(fused_y.dtype)], dim=1))
