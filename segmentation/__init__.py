"""Semantic segmentation on fused images (segmentation_models_pytorch), scored with torchmetrics."""

from segmentation.config import SegmentConfig
from segmentation.errors import NoTaskLabels

__all__ = ["NoTaskLabels", "SegmentConfig", "train_and_evaluate"]


def __getattr__(name: str):
    # the training code (smp, timm, torchmetrics) is imported only when asked for
    if name == "train_and_evaluate":
        from segmentation.train import train_and_evaluate

        return train_and_evaluate
    raise AttributeError(f"module 'segmentation' has no attribute {name!r}")
