"""Class-share calibration of a trained segmenter on held-out images.

A network trained on few images with class-weighted losses draws the boundary of a class at a
place that depends on its seed: one seed labels 2 % of the background around a warm person
"person", another 4 % (docs/MEASUREMENTS.md). Every method scored by that network inherits the
offset, so the within-seed differences between methods vary from seed to seed.

`fit_class_offsets` finds one additive offset per class for the network's scores such that, on
the val split, every class is predicted on as many pixels as it is labelled there. The offsets
are fit once per trained model, on images none of the compared methods produced (the shared
segmenter: the source images of the val split), and then applied unchanged to every test image
(`Calibrated`). They change only where the arg-max decision falls between classes, never the
network's weights.

Off by default (`segment.base.calibration: null`): fit on the default's 16 val images, the
offsets of the thin classes vary from seed to seed themselves, and where the networks already
agree they added more noise than they removed (docs/MEASUREMENTS.md).
"""

from __future__ import annotations

import logging

import torch
from torch import nn

from mmif.layout import IGNORE_INDEX
from mmif.logging_utils import progress_bar
from segmentation.data import Batch
from segmentation.model import Ensemble

log = logging.getLogger(__name__)

#: at most this many val pixels are kept for the fit (a fixed random subset beyond it)
MAX_PIXELS = 2_000_000


def log_scores(model: nn.Module, images: torch.Tensor) -> torch.Tensor:
    """Per-class scores whose arg-max is the model's prediction and to which offsets are added:
    the logits of one network, the log of the mean probabilities of an Ensemble."""
    out = model(images).float()
    if isinstance(model, Ensemble):
        return out.clamp_min(1e-12).log()
    return out


class Calibrated(nn.Module):
    """A segmenter whose scores get one offset per class (C floats) before the arg-max."""

    def __init__(self, model: nn.Module, offsets: torch.Tensor):
        super().__init__()
        self.model = model
        self.register_buffer("offsets", offsets.detach().float().reshape(1, -1, 1, 1))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return log_scores(self.model, images) + self.offsets


@torch.no_grad()
def collect_scores(
    model: nn.Module,
    loader: torch.utils.data.DataLoader,
    device: torch.device,
    max_pixels: int = MAX_PIXELS,
    seed: int = 0,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Scores (P x C float32, on the CPU) and labels (P int64) of the labelled pixels of every
    image of `loader`; above `max_pixels` pixels, a fixed random subset of them."""
    model.eval()
    scores, labels = [], []
    batch: Batch
    for batch in progress_bar(loader, desc="calibrate", leave=False):
        out = log_scores(model, batch.images.to(device)).cpu()
        for i, (h, w) in enumerate(batch.sizes):
            s = out[i, :, :h, :w].reshape(out.shape[1], -1).T
            t = batch.masks[i, :h, :w].reshape(-1).long()
            keep = t != IGNORE_INDEX
            scores.append(s[keep])
            labels.append(t[keep])
    if not scores:
        raise ValueError("collect_scores: the loader yielded no images")
    s, t = torch.cat(scores), torch.cat(labels)
    if len(t) > max_pixels:
        pick = torch.randperm(len(t), generator=torch.Generator().manual_seed(seed))[:max_pixels]
        s, t = s[pick], t[pick]
    return s, t


def predicted_shares(scores: torch.Tensor, offsets: torch.Tensor, n_classes: int) -> torch.Tensor:
    """Share of pixels predicted as each class (C float64) with `offsets` added to `scores`."""
    pred = (scores.double() + offsets.double()).argmax(dim=1)
    return torch.bincount(pred, minlength=n_classes).double() / max(len(pred), 1)


def fit_class_offsets(
    scores: torch.Tensor,
    labels: torch.Tensor,
    n_classes: int,
    steps: int = 300,
    rate: float = 0.2,
    tolerance: float = 0.01,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Offsets (C float64) after which each class is predicted on its labelled share of pixels.

    scores: P x C (logits or log-probabilities); labels: P class ids (no ignored pixels).
    Each step moves a class's offset by `rate` times the log of its labelled over its predicted
    share, until every ratio is within 1 +- `tolerance` or after `steps` steps. The class with
    the largest labelled share (the background) keeps offset 0, as do classes no val pixel is
    labelled with (nothing to match). Returns the offsets and the final predicted / labelled
    share ratio per class (NaN for unlabelled classes).
    """
    if scores.ndim != 2 or scores.shape[1] != n_classes or len(scores) != len(labels):
        raise ValueError(
            f"fit_class_offsets: scores must be P x {n_classes} and labels P, "
            f"got {tuple(scores.shape)} and {tuple(labels.shape)}"
        )
    target = torch.bincount(labels.long(), minlength=n_classes).double()
    if target.sum() == 0:
        raise ValueError("fit_class_offsets: no labelled pixels")
    target /= target.sum()
    free = target > 0
    free[int(target.argmax())] = False
    offsets = torch.zeros(n_classes, dtype=torch.float64)
    for step in range(steps + 1):
        shares = predicted_shares(scores, offsets, n_classes)
        ratio = shares / target
        if not free.any() or bool(((ratio[free] - 1).abs() <= tolerance).all()):
            break
        if step == steps:
            log.warning(
                "class-share calibration: not within %.0f %% after %d steps (predicted / "
                "labelled share per class %s)",
                100 * tolerance,
                steps,
                [round(float(r), 3) for r in ratio],
            )
            break
        # a class predicted nowhere counts as predicted on a tenth of a pixel per million
        offsets[free] += rate * torch.log(target / shares.clamp_min(1e-7))[free]
    ratio[target == 0] = float("nan")
    return offsets, ratio
