"""`mmif weights`: install pretrained weights that methods use when present (never fetched at run time).

    mmif weights vgg19                   download torchvision's VGG19 ImageNet weights (548 MB)
    mmif weights vgg19 --from FILE       install a copy downloaded elsewhere (offline machines)

The file goes where CoCoNet looks for it (torchvision's cache, `~/.cache/torch/hub/checkpoints/`
unless TORCH_HOME is set; or --dest), after its SHA-256 is checked against the prefix in
torchvision's file name (vgg19-dcbb9e9d.pth). Trainings record `vgg_pretrained: true` afterwards.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from mmif.logging_utils import progress_bar

log = logging.getLogger(__name__)

HELP = "install pretrained weights (VGG19 ImageNet for CoCoNet) with a checksum check"
DESCRIPTION = __doc__


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("name", choices=["vgg19"], help="which weights (vgg19: CoCoNet's VGG19)")
    p.add_argument(
        "--from",
        dest="source",
        metavar="FILE_OR_URL",
        help="a local copy of the file, or another URL (default: torchvision's download URL)",
    )
    p.add_argument(
        "--dest",
        type=Path,
        help="where to put it (default: torchvision's cache, where CoCoNet looks)",
    )


def run(args: argparse.Namespace) -> int:
    from fusion.coconet.vgg import TORCHVISION_URL, default_weights_path, install_vgg19_weights

    dest = args.dest or default_weights_path()
    log.info(
        "installing VGG19 ImageNet weights from %s into %s", args.source or TORCHVISION_URL, dest
    )
    bar = progress_bar(unit="B", unit_scale=True, desc="vgg19", leave=False)

    def progress(done: int, total: int | None) -> None:
        bar.total = total
        bar.update(done - bar.n)

    try:
        path = install_vgg19_weights(args.source, dest, progress=progress)
    finally:
        bar.close()
    if args.dest:
        log.info("set fusion.coconet.vgg_weights: %s in params.yaml so CoCoNet uses it", path)
    return 0
