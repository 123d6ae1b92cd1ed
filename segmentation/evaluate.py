"""Segmentation metrics: per-image confusion counts, per-class IoU, mIoU and pixel accuracy.

IoU of a class over a split is TP / (TP + FP + FN) from the split's summed confusion matrix.
A class with no ground-truth pixel in the split has no defined IoU: it is reported as NaN and
left out of the mean (mIoU = mean over the classes present in the truth). Pixels predicted as such
an absent class still lower the IoU of their true class, as false negatives. torchmetrics, which
would report 0 for these classes, gives the reported numbers; the confusion counts are kept per
image so that any subset can be re-scored later.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader
from torchmetrics.classification import MulticlassAccuracy, MulticlassJaccardIndex

from mmif.iou import mean_iou
from mmif.layout import IGNORE_INDEX
from mmif.logging_utils import progress_bar
from segmentation.data import Batch


@dataclass
class Evaluation:
    """Results over one split; iou is per class (NaN for classes absent from the truth)."""

    stems: list[str]
    confusion: np.ndarray  # N x C x C int64, rows truth, cols prediction
    iou: np.ndarray  # C float64
    miou: float
    pixel_accuracy: float


def confusion_matrix(pred: torch.Tensor, target: torch.Tensor, n_classes: int) -> torch.Tensor:
    """Per-image confusion counts, B x C x C int64 (rows truth, cols prediction).

    pred, target: B x H x W integer class ids; target pixels equal to 255 are ignored.
    """
    b = target.shape[0]
    pred, target = pred.reshape(b, -1).long(), target.reshape(b, -1).long()
    valid = target != IGNORE_INDEX
    offset = torch.arange(b, device=target.device)[:, None] * n_classes * n_classes
    codes = (offset + target * n_classes + pred)[valid]
    counts = torch.bincount(codes, minlength=b * n_classes * n_classes)
    return counts.view(b, n_classes, n_classes)


@torch.no_grad()
def evaluate(
    model: nn.Module,
    loader: DataLoader,
    n_classes: int,
    device: torch.device,
    amp: bool = False,
    desc: str = "evaluate",
) -> Evaluation:
    """Predict every image of `loader` (batches of `segmentation.data.Batch`) and score them.

    Predictions are cropped back to each image's own size before scoring, so padding never counts.
    """
    model.eval()
    # one process scores the whole split (rank 0 under DDP): no cross-process sync on compute
    common = {"num_classes": n_classes, "ignore_index": IGNORE_INDEX, "sync_on_compute": False}
    jaccard = MulticlassJaccardIndex(average="none", **common).to(device)
    accuracy = MulticlassAccuracy(average="micro", **common).to(device)
    stems: list[str] = []
    confusions: list[torch.Tensor] = []
    batch: Batch
    for batch in progress_bar(loader, desc=desc, leave=False):
        images = batch.images.to(device, non_blocking=True)
        with torch.autocast(
            device_type=device.type, dtype=torch.float16, enabled=amp and device.type == "cuda"
        ):
            logits = model(images)
        pred = logits.argmax(dim=1)
        masks = batch.masks.to(device)
        full = tuple(pred.shape[-2:])
        if all(tuple(size) == full for size in batch.sizes):  # no padding: the batch at once
            crops = [(pred, masks)]
        else:
            crops = [
                (pred[i : i + 1, :h, :w], masks[i : i + 1, :h, :w])
                for i, (h, w) in enumerate(batch.sizes)
            ]
        for p, t in crops:
            jaccard.update(p, t)
            accuracy.update(p, t)
            confusions.append(confusion_matrix(p, t, n_classes).cpu())
        stems.extend(batch.stems)
    if not stems:
        raise ValueError("evaluate: the loader yielded no images")
    iou = jaccard.compute().double().cpu().numpy()
    truth_pixels = jaccard.confmat.sum(dim=1).cpu().numpy()
    iou[truth_pixels == 0] = np.nan
    return Evaluation(
        stems=stems,
        confusion=torch.cat(confusions).numpy().astype(np.int64),
        iou=iou,
        miou=mean_iou(iou),
        pixel_accuracy=float(accuracy.compute()),
    )
