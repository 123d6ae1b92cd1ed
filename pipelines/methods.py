"""`mmif methods`: list the registered fusion methods."""

from __future__ import annotations

import argparse
import sys

from fusion.registry import available_methods, is_trainable

HELP = "list the available fusion methods"


def add_arguments(p: argparse.ArgumentParser) -> None:
    pass


def run(args: argparse.Namespace) -> int:
    for name in available_methods():
        tag = (
            " (trained by the pipeline)"
            if not name.startswith("external") and is_trainable(name)
            else ""
        )
        sys.stdout.write(f"{name}{tag}\n")
    return 0
