"""Helpers shared by the stage entry points."""

from __future__ import annotations

import argparse
import logging
from collections.abc import Collection
from pathlib import Path

from mmif.config import DEFAULT_PARAMS, Params
from mmif.config import load_params as load_params_file

log = logging.getLogger(__name__)


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


def load_params(
    args: argparse.Namespace, required: bool = True, check_names: bool | Collection[str] = ()
) -> Params:
    """The whole of --params (params.yaml), validated at the stage's start: a bad key in any
    section stops every stage. An absent file is an error only when `required` (else the
    built-in defaults). check_names: sections whose library checks also run
    (mmif.config.load_params)."""
    path = Path(getattr(args, "params", DEFAULT_PARAMS) or DEFAULT_PARAMS)
    return load_params_file(path, required=required, check_names=check_names)
