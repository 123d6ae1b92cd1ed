"""How a downstream task model meets a fusion method's images: the three task protocols.

- `frozen`: one task model per seed, trained once on the train split's source images (infrared
  and visible as separate samples with the same labels) or started from weights the user gives,
  is shared by every method and scores each method's fused test images unchanged. Nothing is
  trained per method, so a method with fused test images only (published results) gets a score.
  It answers "how well does a deployed model see this fusion?".
- `finetune`: every method starts from that shared model and is fine-tuned on its own fused
  train split. A method without fused train images falls back to `frozen` (and says so).
- `retrain`: every method trains its own model from scratch on its fused train split.

Under `frozen` and `finetune` all methods of a seed share that seed's task model, so their
scores are compared within the seed (paired); under `retrain` seeds are independent trainings.

A task section of params.yaml (`detect:`, `segment:`) names the protocol, the settings shared by
every training of the task, and one mapping of schedule overrides per kind of training:
`base` (the shared model), `finetune` (on top of `base`) and `retrain`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

from mmif.config import from_dict
from mmif.errors import ConfigError

PROTOCOLS = ("frozen", "finetune", "retrain")
#: protocols whose methods share each seed's task model (comparisons within a seed)
PAIRED = frozenset({"frozen", "finetune"})
#: the trainings a task section describes
SCHEDULES = ("base", "finetune", "retrain")

T = TypeVar("T")


def check_protocol(value: str) -> None:
    """Raise ValueError naming `protocol` unless value is one of PROTOCOLS."""
    if value not in PROTOCOLS:
        raise ValueError(f"protocol: {value!r} is not one of {', '.join(PROTOCOLS)}")


def is_paired(protocol: str) -> bool:
    """True when the methods of a seed share one task model (frozen, finetune)."""
    return protocol in PAIRED


def schedule_layers(
    schedules: Mapping[str, Mapping[str, Any]], which: str
) -> list[tuple[str, Mapping[str, Any]]]:
    """The override mappings that make up training `which`, in the order they apply."""
    if which not in SCHEDULES:
        raise ValueError(f"unknown schedule {which!r}; one of {', '.join(SCHEDULES)}")
    order = {"base": ["base"], "finetune": ["base", "finetune"], "retrain": ["retrain"]}[which]
    return [(name, schedules.get(name) or {}) for name in order]


def build_schedule(
    cls: type[T],
    common: Mapping[str, Any],
    schedules: Mapping[str, Mapping[str, Any]],
    which: str,
    where: str,
) -> T:
    """Dataclass `cls` for one training: the section's shared settings, then its overrides.

    common: settings every training of the task shares (model, device, evaluation...);
    schedules: {"base": {...}, "finetune": {...}, "retrain": {...}} from params.yaml.
    A schedule may not repeat a shared key (one place per setting); errors name the dotted key
    under `where` (e.g. params.yaml:detect).
    """
    values = dict(common)
    for name, layer in schedule_layers(schedules, which):
        if not isinstance(layer, Mapping):
            raise ConfigError(f"{where}.{name}: expected a mapping of training settings")
        clash = sorted(set(layer) & set(common))
        if clash:
            raise ConfigError(
                f"{where}.{name}.{clash[0]}: set at {where}.{clash[0]} (shared by every training "
                "of the task), not per schedule"
            )
        values.update(layer)
    return from_dict(cls, values, f"{where}.{which}")
