"""The `mmif` command line: one subcommand per pipeline stage, usable inside and outside DVC."""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

from mmif import __version__
from mmif.logging_utils import setup_logging
from mmif.runtime import enable_flush_denormal

# subcommand -> module in pipelines/ providing HELP, add_arguments(parser) and run(args) -> int
STAGES = {
    "prepare": "pipelines.prepare",
    "train": "pipelines.train",
    "fuse": "pipelines.fuse",
    "metrics": "pipelines.metrics",
    "detect": "pipelines.detect",
    "segment": "pipelines.segment",
    "report": "pipelines.report",
    "methods": "pipelines.methods",
    "weights": "pipelines.weights",
}

DESCRIPTION = """\
Multi-modality image fusion benchmark: prepare a dataset, train and run fusion methods
(CoCoNet and baselines), score the fused images with fusion metrics, train and evaluate YOLO
detection and semantic segmentation on them, and write a comparison report.

The DVC pipeline (dvc.yaml) calls these subcommands; each also works on its own, e.g.
  mmif fuse --method max --ir IR_DIR --vis VIS_DIR --out OUT_DIR
  mmif metrics --ir IR_DIR --vis VIS_DIR --fused OUT_DIR --out metrics.csv
"""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mmif", description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--version", action="version", version=f"mmif {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, module_name in STAGES.items():
        module = importlib.import_module(module_name)
        p = sub.add_parser(
            name,
            help=module.HELP,
            description=getattr(module, "DESCRIPTION", module.HELP),
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        p.add_argument("-v", "--verbose", action="store_true", help="debug logging")
        module.add_arguments(p)
        p.set_defaults(_run=module.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "_run", None):
        parser.print_help()
        return 2
    setup_logging(args.verbose)
    log = logging.getLogger("mmif")
    enable_flush_denormal()
    try:
        return int(args._run(args) or 0)
    except KeyboardInterrupt:
        log.error("interrupted; no partial outputs were kept")
        return 130
    except (ValueError, FileNotFoundError, KeyError, RuntimeError) as exc:
        # expected user-facing errors (bad input, bad params): one clear line, no traceback
        if args.verbose:
            raise
        msg = exc.args[0] if isinstance(exc, KeyError) and exc.args else exc
        log.error("%s", msg)
        return 1


if __name__ == "__main__":
    sys.exit(main())
