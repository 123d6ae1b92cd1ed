"""One registry of fusion methods behind one interface.

A method is built by name (the same name params.yaml and the CLI use) from a factory
`factory(params, weights: Path | None, device: torch.device) -> FusionMethod`, where `params` is
an instance of the dataclass the method registered (`register(name, params=Cls)`; `NoParams` for
a method without parameters). `method_params` builds that dataclass from a mapping (the
`fusion.<name>` entry of params.yaml, `--set`), and `method_entry` the whole entry: the fuse
stage's `fuse_batch_size` and the method's parameters (`mmif.config.load_params` calls it for
every entry of params.yaml).
Its `fuse_luminance` takes infrared and visible luminance as B x 1 x H x W float tensors in [0, 1]
on any device and returns the fused luminance, B x 1 x H x W in [0, 1]. Colour is handled once,
for every method, by `fuse` (luminance path, see fusion.color).

Adding a method: write a module with a factory decorated by `@register("name", params=Cls)` and
import it in `fusion/methods/__init__.py`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from fusion.color import merge_colour, split_colour
from mmif.config import from_dict
from mmif.errors import ConfigError
from mmif.runtime import resolve_device


class FusionMethod:
    """Base class: subclasses implement `fuse_luminance`."""

    name: str = "base"
    #: methods whose weights come from training (the pipeline passes --weights)
    trainable: bool = False

    def __init__(self, params: Any = None, device: torch.device | str = "cpu"):
        #: the method's parameters (its registered dataclass) as a plain dict, for records
        self.params = (
            dataclasses.asdict(params) if dataclasses.is_dataclass(params) else dict(params or {})
        )
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


@dataclass
class NoParams:
    """The parameters of a method that takes none."""


@dataclass
class MethodEntry:
    """One `fusion.<method>` entry of params.yaml.

    fuse_batch_size: same-size pairs the fuse stage fuses in one call (the stage's setting, not
        the method's). params: the method's parameters (the dataclass it registered).
    """

    params: Any
    fuse_batch_size: int = 8


#: the key of `fusion.<method>` that configures the fuse stage rather than the method
FUSE_BATCH_KEY = "fuse_batch_size"

Factory = Callable[[Any, Path | None, torch.device], FusionMethod]
#: trainer(data_root, out_dir, params) -> path of the trained weights file inside out_dir
Trainer = Callable[[Path, Path, Any], Path]
_REGISTRY: dict[str, Factory] = {}
_PARAMS: dict[str, type] = {}
_TRAINERS: dict[str, Trainer] = {}
EXTERNAL_PREFIXES = ("external:", "external_")


def register(name: str, params: type = NoParams) -> Callable[[Factory], Factory]:
    """Register a factory under `name`; `params` is the dataclass of its parameters."""

    def deco(factory: Factory) -> Factory:
        if name in _REGISTRY:
            raise ValueError(f"fusion method '{name}' registered twice")
        _REGISTRY[name] = factory
        _PARAMS[name] = params
        return factory

    return deco


def _key(name: str) -> str:
    """The registry key of a method name (every external method shares one)."""
    return "external" if is_external(name) else name


def check_method_name(name: str, where: str | None = None) -> None:
    """Refuse a method name the registry does not know, naming the available ones."""
    _load_builtin()
    if _key(name) not in _REGISTRY:
        raise ConfigError(
            f"{where + ': ' if where else ''}unknown fusion method '{name}'; "
            f"available: {', '.join(available_methods())}"
        )


def method_params(
    name: str, params: Mapping[str, Any] | None = None, where: str | None = None
) -> Any:
    """The parameters of method `name` (its registered dataclass) from a mapping, validated:
    an unknown key is an error naming the method's keys."""
    check_method_name(name, where or f"params.yaml:fusion.{name}")
    cls = _PARAMS[_key(name)]
    if dataclasses.is_dataclass(params) and not isinstance(params, type):
        if not isinstance(params, cls):
            raise TypeError(
                f"fusion method '{name}' takes {cls.__name__}, not {type(params).__name__}"
            )
        return params
    return from_dict(cls, dict(params or {}), where or f"params.yaml:fusion.{name}")


def method_entry(name: str, entry: Mapping[str, Any] | None, where: str) -> MethodEntry:
    """One `fusion.<name>` entry of params.yaml: `fuse_batch_size` and the method's parameters."""
    if entry is None:
        entry = {}
    if not isinstance(entry, Mapping):
        raise ConfigError(f"{where}: expected a mapping of parameters, got {entry!r}")
    params = {k: v for k, v in entry.items() if k != FUSE_BATCH_KEY}
    batch = entry.get(FUSE_BATCH_KEY, MethodEntry.fuse_batch_size)
    if isinstance(batch, bool) or not isinstance(batch, int) or batch < 1:
        raise ConfigError(f"{where}.{FUSE_BATCH_KEY}: expected a positive integer, got {batch!r}")
    return MethodEntry(params=method_params(name, params, where), fuse_batch_size=batch)


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


def train_method(name: str, data_root: Path, out_dir: Path, params: Any = None) -> Path:
    """Train a learned method on a prepared dataset; returns the weights file.
    params: the method's dataclass, or a mapping `method_params` validates."""
    _load_builtin()
    if name not in _TRAINERS:
        raise ConfigError(
            f"fusion method '{name}' has no training; trainable: {', '.join(sorted(_TRAINERS))}"
        )
    return _TRAINERS[name](Path(data_root), Path(out_dir), method_params(name, params))


def available_methods() -> list[str]:
    _load_builtin()
    return sorted(_REGISTRY) + ["external:<name>"]


def is_external(name: str) -> bool:
    return name.startswith(EXTERNAL_PREFIXES)


def create_method(
    name: str,
    params: Any = None,
    weights: str | Path | None = None,
    device: str | torch.device = "cpu",
) -> FusionMethod:
    """Build a fusion method by its registry name; params: its dataclass (`method_params`), or a
    mapping that `method_params` validates."""
    _load_builtin()
    check_method_name(name)
    key = _key(name)
    cfg = method_params(name, params)
    dev = resolve_device(device)
    method = _REGISTRY[key](cfg, Path(weights) if weights else None, dev)
    if key == "external":
        method.name = name
    return method


def _load_builtin() -> None:
    import fusion.methods  # noqa: F401  (registers the built-in methods)
