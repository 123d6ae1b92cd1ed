"""The one resume policy of the fusion trainers (CoCoNet, DenseFuse).

A trainer saves a checkpoint after each epoch with a `TrainingFingerprint`: the checkpoint
format, a hash of the training data, a hash of the trainer's code and the parameters that shape
the run. A later run continues from that checkpoint only when all four are unchanged; the step
budget (`epochs`, `steps`) is left out of the parameters, so a run with a larger budget continues
where the last one stopped, and any other change starts afresh with the reason in the log. What
a budget may change is the trainer's own rule (`budget_check`: e.g. a smaller budget, or one
that stopped mid-epoch, cannot be continued to the same result as a fresh run).

`mmif train` keeps the checkpoint in the output's work folder (see `pipelines/train.py`), so the
trainer, not the stage, decides whether it can be used.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrainingFingerprint:
    """What a checkpoint must match to be continued.

    format: the checkpoint layout's version. data, code: hashes of the training data and of the
    trainer's package (`mmif.runtime.code_fingerprint`). params: the parameters that shape the
    run, flat (e.g. `{"lr": 1e-3, "stage1.lr": 5e-4}`); never the step budget or the device.
    """

    format: str
    data: str
    code: str
    params: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def flat_params(config: Mapping[str, Any], keys: tuple[str, ...]) -> dict[str, Any]:
    """The values of dotted `keys` (e.g. "stage1.lr") of a nested config mapping."""
    out = {}
    for key in keys:
        value: Any = config
        for part in key.split("."):
            value = value[part]
        out[key] = value
    return out


def refusal(saved: Any, expected: TrainingFingerprint) -> str | None:
    """Why a run with `expected` cannot continue from the fingerprint `saved` (None: it can)."""
    if not isinstance(saved, Mapping) or saved.get("format") != expected.format:
        return "a checkpoint of another format or version"
    if saved.get("data") != expected.data:
        return "the training data changed"
    if saved.get("code") != expected.code:
        return "the training code changed"
    old = saved.get("params") or {}
    for key, value in expected.params.items():
        if key not in old or old[key] != value:
            return f"{key} changed from {old.get(key)!r} to {value!r}"
    return None


def load_resumable(
    path: Path,
    expected: TrainingFingerprint,
    *,
    name: str,
    device: torch.device | str = "cpu",
    budget_check: Callable[[dict[str, Any]], str | None] | None = None,
) -> dict[str, Any] | None:
    """The checkpoint at `path` when training can continue from it, else None (reason logged).

    The checkpoint is a dict with the fingerprint under "fingerprint" (`TrainingFingerprint.to_dict`);
    `budget_check(checkpoint)` adds the trainer's rule about the step budget. An unreadable file
    (damaged, or from another version) is a reason to start afresh, never an error.
    """
    if not path.exists():
        return None
    try:
        ckpt = torch.load(path, map_location=device, weights_only=True)
    except Exception as exc:
        log.warning("%s: %s is unreadable (%s); training from scratch", name, path, exc)
        return None
    reason = refusal(ckpt.get("fingerprint") if isinstance(ckpt, dict) else None, expected)
    if reason is None and budget_check is not None:
        reason = budget_check(ckpt)
    if reason:
        log.warning("%s: %s not continued (%s); training from scratch", name, path, reason)
        return None
    return ckpt
