"""Semantic segmentation on fused images (segmentation_models_pytorch), scored with torchmetrics."""

from mmif.runtime import offline_environment

# Nothing here may reach the network: smp is always called with encoder_weights=None and local
# weights are loaded from disk; huggingface_hub reads HF_HUB_OFFLINE when it is first imported.
offline_environment()

from mmif.errors import NoTaskLabels  # noqa: E402
from segmentation.config import SegmentConfig  # noqa: E402

__all__ = ["NoTaskLabels", "SegmentConfig", "train_and_evaluate"]


def __getattr__(name: str):
    # the training code (smp, timm, torchmetrics) is imported only when asked for
    if name == "train_and_evaluate":
        from segmentation.train import train_and_evaluate

        return train_and_evaluate
    raise AttributeError(f"module 'segmentation' has no attribute {name!r}")
