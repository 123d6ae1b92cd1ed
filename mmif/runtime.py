"""Process-wide CPU settings shared by every stage."""

from __future__ import annotations

import logging

import torch

log = logging.getLogger(__name__)

_flush_denormal_global = False


def enable_flush_denormal() -> bool:
    """Treat subnormal floats as zero on the CPU for the whole process.

    Training on real or synthetic images produces subnormal activations and gradients (values
    below 1.2e-38) that x86 CPUs process many times slower; flushing them to zero, as most
    deep-learning runtimes do on the CPU, changes no result measurably. Returns False where the
    CPU does not support it.
    """
    global _flush_denormal_global
    _flush_denormal_global = bool(torch.set_flush_denormal(True))
    return _flush_denormal_global


def flush_denormal_is_global() -> bool:
    """Whether `enable_flush_denormal` switched flushing on for the whole process."""
    return _flush_denormal_global
