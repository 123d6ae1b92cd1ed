"""One registry of fusion methods behind one interface.

A method is built by name (the same name params.yaml and the CLI use) from a factory
`factory(params: dict, weights: Path | None, device: torch.device) -> FusionMethod`.
Its `fuse_luminance` takes infrared and visible luminance as B x 1 x H x W float tensors in [0, 1]
on any device and returns the fused luminance, B x 1 x H x W in [0, 1]. Colour is handled once,
for every method, by `fuse` (luminance path, see fusion.color).

Adding a method: write a module with a factory decorated by `@register("name")` and import it in
`fusion/methods/__init__.py`.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from fusion.color import merge_colour, split_colour
from mmif.config import ConfigError
from mmif.runtime import resolve_device


class FusionMethod:
    """Base class: subclasses implement `fuse_luminance`."""

    name: str = "base"
    #: methods whose weights come from training (the pipeline passes --weights)
    trainable: bool = False

    def __init__(self, params: dict[str, Any] | None = None, device: torch.device | str = "cpu"):
        self.params = dict(params or {})
        self.device = torch.device(device)

    def fuse_luminance(self, ir: torch.Tensor, vis: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    @torch.inference_mode()
    def fuse(self, ir: torch.Tensor, vis: torch.Tensor) -> torch.Tensor:
        """Fuse B x (1|3) x H x W sources in [0, 1]; colour (3-channel) output when a source has colour."""
        if ir.shape[0] != vis.shape[0] or ir.shape[-2:] != vis.shape[-2:]:
            raise ValueError(f"source shapes differ: ir {tuple(ir.shape)}, vis {tuple(vis.shape)}")
        ir_y, vis_y, chroma = split_colour(ir.to(self.device), vis.to(self.device))
        fused = self.fuse_luminance(ir_y.float(), vis_y.float()).float().clamp(0.0, 1.0)
        return merge_colour(fused, chroma)

    def fuse_batch(self, ir: torch.Tensor, vis: torch.Tensor, stems: list[str]) -> torch.Tensor:
        """Fuse a batch whose images are known by stem; methods that read their result from disk
        (external fused images) override this, every other method just fuses."""
        return self.fuse(ir, vis)

    def info(self) -> dict[str, Any]:
        """Facts about the method worth recording with its outputs (e.g. pretrained or not)."""
        return {"method": self.name, "params": self.params}


Factory = Callable[[dict[str, Any], Path | None, torch.device], FusionMethod]
#: trainer(data_root, out_dir, params) -> path of the trained weights file inside out_dir
Trainer = Callable[[Path, Path, dict[str, Any]], Path]
_REGISTRY: dict[str, Factory] = {}
_TRAINERS: dict[str, Trainer] = {}
EXTERNAL_PREFIXES = ("external:", "external_")


def register(name: str) -> Callable[[Factory], Factory]:
    def deco(factory: Factory) -> Factory:
        if name in _REGISTRY:
            raise ValueError(f"fusion method '{name}' registered twice")
        _REGISTRY[name] = factory
        return factory

    return deco


def register_trainer(name: str) -> Callable[[Trainer], Trainer]:
    """Declare how the pipeline trains method `name` (only learned methods have one)."""

    def deco(trainer: Trainer) -> Trainer:
        if name in _TRAINERS:
            raise ValueError(f"trainer for '{name}' registered twice")
        _TRAINERS[name] = trainer
        return trainer

    return deco


def is_trainable(name: str) -> bool:
    _load_builtin()
    return name in _TRAINERS


def train_method(
    name: str, data_root: Path, out_dir: Path, params: dict[str, Any] | None = None
) -> Path:
    """Train a learned method on a prepared dataset; returns the weights file."""
    _load_builtin()
    if name not in _TRAINERS:
        raise ConfigError(
            f"fusion method '{name}' has no training; trainable: {', '.join(sorted(_TRAINERS))}"
        )
    return _TRAINERS[name](Path(data_root), Path(out_dir), dict(params or {}))


def check_params(name: str, params: dict[str, Any], allowed: tuple[str, ...] = ()) -> None:
    """Refuse parameters a method does not take (params.yaml `fusion.<name>` or `--set`).

    For methods whose parameters are a dataclass, `mmif.config.from_dict` does the same.
    """
    unknown = sorted(set(params) - set(allowed))
    if unknown:
        takes = (
            f"its parameters are: {', '.join(sorted(allowed))}"
            if allowed
            else "it takes no parameters"
        )
        raise ConfigError(
            f"fusion.{name}.{unknown[0]}: method '{name}' has no parameter '{unknown[0]}' "
            f"(from params.yaml or --set); {takes}"
        )


def available_methods() -> list[str]:
    _load_builtin()
    return sorted(_REGISTRY) + ["external:<name>"]


def is_external(name: str) -> bool:
    return name.startswith(EXTERNAL_PREFIXES)


def create_method(
    name: str,
    params: dict[str, Any] | None = None,
    weights: str | Path | None = None,
    device: str | torch.device = "cpu",
) -> FusionMethod:
    """Build a fusion method by its registry name."""
    _load_builtin()
    key = "external" if is_external(name) else name
    if key not in _REGISTRY:
        raise ConfigError(
            f"unknown fusion method '{name}'; available: {', '.join(available_methods())}"
        )
    dev = resolve_device(device)
    method = _REGISTRY[key](dict(params or {}), Path(weights) if weights else None, dev)
    if key == "external":
        method.name = name
    return method


def _load_builtin() -> None:
    import fusion.methods  # noqa: F401  (registers the built-in methods)
