"""`mmif report`: tables, significance tests, plots, report.md and a self-contained report.html
comparing every method's fusion metrics and task scores."""

from __future__ import annotations

import argparse
from pathlib import Path

from mmif.config import Params
from mmif.io import check_output_dir, check_output_file, write_text
from pipelines.common import add_overwrite_argument, add_params_argument, load_params

HELP = "write the comparison report (tables, statistics, plots, HTML)"
DESCRIPTION = __doc__


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--results",
        type=Path,
        default=Path("results"),
        help="results folder (default: %(default)s)",
    )
    p.add_argument(
        "--data",
        type=Path,
        default=Path("data/prepared"),
        help="prepared dataset (default: %(default)s)",
    )
    p.add_argument(
        "--fused",
        type=Path,
        default=Path("data/fused"),
        help="fused images root (default: %(default)s)",
    )
    p.add_argument(
        "--out",
        type=Path,
        default=Path("results/report"),
        help="report folder (default: %(default)s)",
    )
    p.add_argument(
        "--summary",
        type=Path,
        default=Path("results/report_summary.json"),
        help="copy of the headline numbers for `dvc metrics` (default: %(default)s)",
    )
    p.add_argument(
        "--registry",
        type=Path,
        default=None,
        metavar="FILE",
        help="registered methods (`mmif external add`; default: external.yaml next to --params)",
    )
    add_overwrite_argument(p)
    add_params_argument(p)


def run(args: argparse.Namespace) -> int:
    from report import build_report
    from report.build import report_inputs

    params = load_params(args)
    cfg = params.report
    inputs = report_inputs(args.results, args.data, args.fused)
    check_output_dir(args.out, inputs, args.overwrite)  # before the summary: the main output
    if args.summary:
        check_output_file(args.summary, [*inputs, args.out])
    build_report(
        args.results,
        args.data,
        args.fused,
        args.out,
        cfg,
        overwrite=args.overwrite,
        study=_study(args, params),
    )
    if args.summary:
        write_text(args.summary, (args.out / "summary.json").read_text())
    return 0


def _study(args: argparse.Namespace, params: Params) -> list[str] | None:
    """params.yaml `methods` and the registered methods; None (report every method found) when
    params.yaml lists no methods."""
    from mmif.external import REGISTRY_FILE, load_registry, study_methods

    if "methods" not in params.raw:
        return None
    registry = args.registry or Path(args.params).parent / REGISTRY_FILE
    return study_methods(params.methods, load_registry(registry))
