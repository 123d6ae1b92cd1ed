"""CoCoNet's training losses: self-adaptive weights, SSIM + MSE fidelity, coupled contrastive loss.

All functions are batched and device-agnostic and take B x 1 x H x W images in [0, 1]; every
weight and loss term is computed per sample before any batch mean.

- `adaptive_weights`: per-sample weights of the two sources from their Sobel gradient (for SSIM)
  and Shannon entropy (for MSE), as softmax([m_ir, m_vis] / (c * (m_ir + m_vis))).
- `fidelity_loss`: ssim_weight * L_ssim + L_mse with those weights.
- `contrastive_loss`: in a frozen VGG19's feature space, pulls the fused salient region towards
  the infrared one and away from visible images, and the fused background towards the visible one
  and away from infrared images.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F

from fusion.losses import COCONET, ssim

#: weights of relu1_1 .. relu5_1 in the contrastive loss (as published)
CONTRASTIVE_LAYER_WEIGHTS = (1 / 32, 1 / 16, 1 / 8, 1 / 4, 1.0)
_EPS = 1e-8


def mean_gradient(x: torch.Tensor) -> torch.Tensor:
    """Mean Sobel magnitude |Gx| + |Gy| per sample.

    x: B x 1 x H x W (any range; H, W >= 3). Only interior pixels count (no padding), so the
    image border adds no artificial edge. Returns B values.
    """
    if x.shape[-1] < 3 or x.shape[-2] < 3:
        raise ValueError(
            f"mean_gradient needs images of at least 3 x 3 pixels, got {tuple(x.shape[-2:])}"
        )
    sobel_x = torch.tensor([[-1.0, 0.0, 1.0], [-2.0, 0.0, 2.0], [-1.0, 0.0, 1.0]], device=x.device)
    kernels = torch.stack([sobel_x, sobel_x.t()]).unsqueeze(1)  # 2 x 1 x 3 x 3
    grad = F.conv2d(x.float(), kernels)
    return grad.abs().sum(dim=1).mean(dim=(1, 2))


def entropy(x: torch.Tensor, bins: int = 256) -> torch.Tensor:
    """Shannon entropy (bits) of each sample's histogram of grey levels.

    x: B x C x H x W in [0, 1], quantised to `bins` levels (0..255 for 8-bit images, rounded so
    an image read from 8 bits keeps its exact levels). One histogram per sample, all computed
    together by a single bincount. Returns B values in [0, log2(bins)].
    """
    b = x.shape[0]
    levels = (x.detach().reshape(b, -1).float() * (bins - 1)).round_().clamp_(0, bins - 1).long()
    offsets = torch.arange(b, device=x.device).unsqueeze(1) * bins
    counts = torch.bincount((levels + offsets).flatten(), minlength=b * bins).view(b, bins).float()
    p = counts / counts.sum(dim=1, keepdim=True)
    return -(p * torch.log2(p.clamp_min(1e-30))).sum(dim=1)


@torch.no_grad()
def adaptive_weights(
    ir: torch.Tensor, vis: torch.Tensor, c1: float = 0.5, c2: float = 0.75
) -> tuple[torch.Tensor, torch.Tensor]:
    """Self-adaptive source weights, per sample, without gradient.

    ir, vis: B x 1 x H x W in [0, 1]. Returns (w_ssim, w_mse), each B x 2 (column 0 infrared,
    column 1 visible, rows sum to 1):
    w_ssim = softmax([g_ir, g_vis] / (c1 (g_ir + g_vis))) with g the mean Sobel magnitude,
    w_mse = softmax([e_ir, e_vis] / (c2 (e_ir + e_vis))) with e the entropy.
    Two flat sources (g or e both 0) get equal weights.
    """
    g = torch.stack([mean_gradient(ir), mean_gradient(vis)], dim=1)
    e = torch.stack([entropy(ir), entropy(vis)], dim=1)
    w_ssim = torch.softmax(g / (c1 * g.sum(dim=1, keepdim=True).clamp_min(_EPS)), dim=1)
    w_mse = torch.softmax(e / (c2 * e.sum(dim=1, keepdim=True).clamp_min(_EPS)), dim=1)
    return w_ssim, w_mse


def fidelity_loss(
    fused: torch.Tensor,
    ir: torch.Tensor,
    vis: torch.Tensor,
    w_ssim: torch.Tensor,
    w_mse: torch.Tensor,
    ssim_weight: float = 20.0,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """ssim_weight * L_ssim + L_mse and its two terms (batch means of per-sample values).

    fused, ir, vis: B x 1 x H x W in [0, 1]; w_ssim, w_mse: B x 2 from `adaptive_weights`.
    L_ssim = sum_s w_ssim[s] (1 - SSIM(s, F)). L_mse = sum_s w_mse[s] MSE(s, F) with MSE measured
    on the [-1, 1] scale the network works in (4x the [0, 1] value), as in the published
    training, so the 20 : 1 balance means what it meant there.
    """
    sources = torch.cat([ir, vis], dim=1).float()
    fused2 = fused.float().expand(-1, 2, -1, -1)
    l_ssim = (w_ssim * (1.0 - ssim(sources, fused2, **COCONET))).sum(dim=1).mean()
    mse = ((2.0 * (fused2 - sources)) ** 2).mean(dim=(2, 3))
    l_mse = (w_mse * mse).sum(dim=1).mean()
    return ssim_weight * l_ssim + l_mse, l_ssim, l_mse


def _per_sample_l1(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return (a.float() - b.float()).abs().flatten(1).mean(dim=1)


def contrastive_loss(
    fused: torch.Tensor,
    ir: torch.Tensor,
    vis: torch.Tensor,
    mask: torch.Tensor,
    features: Callable[[torch.Tensor], Sequence[torch.Tensor]],
    n_negatives: int = 3,
    layer_weights: Sequence[float] = CONTRASTIVE_LAYER_WEIGHTS,
    dtype: torch.dtype | None = None,
) -> torch.Tensor:
    """Coupled contrastive loss with a salient mask (CoCoNet, eq. for L_con).

    fused, ir, vis: B x 1 x H x W in [0, 1]; mask: B x 1 x H x W, 1 on salient (infrared) targets,
    0 elsewhere. features: a frozen extractor returning the feature maps phi_k (e.g.
    `vgg.VGG19Relu`; it receives the images on the [-1, 1] scale, masked).

    Per sample i and layer k, with M = mask_i and d the mean absolute difference:
      foreground  w_k d(phi_k(F M), phi_k(IR M)) / sum_j d(phi_k(F M), phi_k(VIS_j M))
      background  w_k d(phi_k(F (1-M)), phi_k(VIS (1-M))) / sum_j d(phi_k(F (1-M)), phi_k(IR_j (1-M)))
    where j runs over `n_negatives` images: the same pair's other modality, then the same
    modality of the next pairs in the batch (wrapping around). A batch too small for that uses
    the pairs it has and scales their sum to n_negatives terms, so the loss keeps its scale.
    Each term is averaged over the samples whose region is non-empty (a sample without a salient
    pixel has no foreground term); the loss is foreground + background.

    What goes through the extractor, each image once: the anchors F M and F (1-M) of the
    non-empty regions (with gradient), then, without gradient, their positive and their
    negatives, one pass per negative (every one is a different image: each is masked with its
    own anchor's mask, so nothing can be shared between anchors). Empty regions cost nothing.
    dtype: run the extractor passes under autocast in this dtype (bfloat16 where the hardware
    computes it natively: the loss costs 0.6x as much on a 2-core AVX512-BF16 CPU; its value
    moves by ~3e-4 relative and its gradient keeps its direction, cosine ~0.98); the distances
    and ratios stay float32. None: no autocast of its own.
    """
    if n_negatives < 1:
        raise ValueError(f"n_negatives must be >= 1, got {n_negatives}")
    b = fused.shape[0]
    n_used = 1 + min(n_negatives - 1, b - 1)
    cl = torch.channels_last
    fg = mask.to(fused.dtype)
    regions = torch.cat([fg, 1.0 - fg])  # 2B x 1 x H x W: foregrounds, then backgrounds
    rows = torch.nonzero(regions.flatten(1).amax(dim=1) > 0).flatten()  # non-empty regions
    if rows.numel() == 0:
        return fused.sum() * 0.0
    regions = regions[rows]
    f_s, ir_s, vis_s = fused * 2.0 - 1.0, ir * 2.0 - 1.0, vis * 2.0 - 1.0

    def masked(foreground: torch.Tensor, background: torch.Tensor) -> torch.Tensor:
        return (torch.cat([foreground, background])[rows] * regions).contiguous(memory_format=cl)

    autocast = torch.autocast(
        fused.device.type, dtype=dtype or torch.float32, enabled=dtype is not None
    )
    with autocast:
        anchor = [a.float() for a in features(masked(f_s, f_s))]  # converted once, reused
    # distances[k][g]: d(phi_k(anchor), phi_k(image g)), g = 0 the positive, then the negatives
    distances: list[list[torch.Tensor]] = [[] for _ in anchor]
    for g in range(1 + n_used):
        if g == 0:
            images = masked(ir_s, vis_s)
        else:
            shift = g - 1
            images = masked(vis_s.roll(shift, dims=0), ir_s.roll(shift, dims=0))
        with torch.no_grad(), autocast:
            feats = features(images)
        for k, (a, n) in enumerate(zip(anchor, feats, strict=True)):
            distances[k].append(_per_sample_l1(a, n))
        del feats
    scale = n_negatives / n_used
    per_row = sum(
        w * d[0] / (torch.stack(d[1:]).sum(dim=0) * scale + _EPS)
        for w, d in zip(layer_weights, distances, strict=True)
    )
    is_fg = rows < b
    fg_term = per_row[is_fg].sum() / is_fg.sum().clamp_min(1)
    bg_term = per_row[~is_fg].sum() / (~is_fg).sum().clamp_min(1)
    return fg_term + bg_term
