"""Fusion methods (CoCoNet and baselines) behind one registry, and fusion quality metrics."""

from fusion.registry import FusionMethod, available_methods, create_method, register

__all__ = ["FusionMethod", "available_methods", "create_method", "register", "CoCoNet"]


def __getattr__(name: str):
    # CoCoNet is imported lazily so `import fusion` stays light (no torchvision VGG at import)
    if name == "CoCoNet":
        from fusion.coconet.network import CoCoNet

        return CoCoNet
    raise AttributeError(name)
