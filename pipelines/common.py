"""Helpers shared by the stage entry points."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path
from typing import Any

from mmif.config import ConfigError, load_yaml

log = logging.getLogger(__name__)

DEFAULT_PARAMS = "params.yaml"


def add_params_argument(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--params",
        default=DEFAULT_PARAMS,
        metavar="FILE",
        help="parameters file (default: %(default)s)",
    )


def add_overwrite_argument(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--overwrite",
        action="store_true",
        help="replace an existing --out folder that mmif did not write, deleting its contents "
        "(a folder mmif wrote is replaced without it; an input folder never is)",
    )


def load_params(args: argparse.Namespace, required: bool = True) -> dict[str, Any]:
    """params.yaml as a dict; an absent file is an error only when `required`."""
    path = Path(getattr(args, "params", DEFAULT_PARAMS) or DEFAULT_PARAMS)
    if not path.exists() and not required:
        log.info("%s not found: using built-in defaults", path)
        return {}
    return load_yaml(path)


def method_section(params: dict[str, Any], method: str) -> dict[str, Any]:
    """The `fusion.<method>` mapping of params.yaml (empty when absent)."""
    fusion = params.get("fusion") or {}
    if not isinstance(fusion, dict):
        raise ConfigError("params.yaml:fusion: expected a mapping of method name -> parameters")
    value = fusion.get(method) or {}
    if not isinstance(value, dict):
        raise ConfigError(f"params.yaml:fusion.{method}: expected a mapping, got {value!r}")
    return dict(value)
