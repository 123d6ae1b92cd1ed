"""The `mmif` command line: one subcommand per pipeline stage, usable inside and outside DVC."""

from __future__ import annotations

import argparse
import errno
import importlib
import logging
import signal
import sys

from mmif import __version__
from mmif.errors import UserError
from mmif.interrupts import handle_stop_signals
from mmif.logging_utils import setup_logging
from mmif.runtime import enable_flush_denormal

# subcommand -> module in pipelines/ providing HELP, add_arguments(parser) and run(args) -> int
STAGES = {
    "prepare": "pipelines.prepare",
    "train": "pipelines.train",
    "fuse": "pipelines.fuse",
    "metrics": "pipelines.metrics",
    "task-plan": "pipelines.task_plan",
    "detect-base": "pipelines.detect_base",
    "detect": "pipelines.detect",
    "segment-base": "pipelines.segment_base",
    "segment": "pipelines.segment",
    "report": "pipelines.report",
    "methods": "pipelines.methods",
    "external": "pipelines.external",
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


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The parser of every subcommand, or of `only` that one (its module alone is imported: a
    stage run by DVC loads no other stage's code, which its dvc.yaml deps do not cover)."""
    parser = argparse.ArgumentParser(
        prog="mmif", description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--version", action="version", version=f"mmif {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, module_name in STAGES.items():
        if only is not None and name != only:
            continue
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


#: operating-system failures that are about the machine, not the code: shown in one line
ENVIRONMENT_ERRNOS = frozenset(
    getattr(errno, name)
    for name in ("EACCES", "EPERM", "ENOSPC", "EDQUOT", "EROFS", "EMFILE", "ENAMETOOLONG")
    if hasattr(errno, name)
)


def main(argv: list[str] | None = None) -> int:
    """Run one subcommand; returns the exit status.

    The project's own errors (`mmif.errors.UserError`: bad input, parameters, output path or
    device) print one line naming the file and the fix (status 1; the traceback with
    --verbose). Permission and disk-space failures print one line too. Anything else is a bug:
    it is reported as an internal error with its traceback.
    """
    words = sys.argv[1:] if argv is None else argv
    command = next((w for w in words if not w.startswith("-")), None)
    parser = build_parser(command if command in STAGES else None)
    args = parser.parse_args(argv)
    if not getattr(args, "_run", None):
        parser.print_help()
        return 2
    setup_logging(args.verbose)
    log = logging.getLogger("mmif")
    enable_flush_denormal()
    with handle_stop_signals():
        return _run(args, log)


def _run(args: argparse.Namespace, log: logging.Logger) -> int:
    try:
        return int(args._run(args) or 0)
    except KeyboardInterrupt:
        log.error(
            "interrupted: unfinished outputs were discarded (their temporary folders removed); "
            "outputs written before stay as they were"
        )
        return 130
    except SystemExit as exc:
        if exc.code == 128 + signal.SIGTERM:
            log.error(
                "terminated: unfinished outputs were discarded (their temporary folders removed); "
                "outputs written before stay as they were"
            )
        raise
    except UserError as exc:
        if args.verbose:
            raise
        log.error("%s", exc)
        return 1
    except OSError as exc:
        if exc.errno not in ENVIRONMENT_ERRNOS or args.verbose:
            log.critical("internal error (%s); the traceback follows", type(exc).__name__)
            raise
        log.error("%s", exc)  # e.g. "[Errno 28] No space left on device: 'results/x.csv'"
        return 1
    except Exception as exc:
        log.critical(
            "internal error (%s: a bug, not a problem with your input); the traceback follows",
            type(exc).__name__,
        )
        raise


if __name__ == "__main__":
    sys.exit(main())
