"""`mmif prepare`: build the canonical prepared dataset that every later stage reads.

- embedded default: `mmif prepare --out data/prepared` renders the synthetic road scenes
  configured in params.yaml (`dataset.name: synthetic`, section `synthetic`);
- a dataset on disk: `mmif prepare --dataset msrs --root DIR [--det-labels DIR] --out DIR`
  (msrs, m3fd, llvip, fmb, tno, roadscene, folders, medical);
- `--check` only reports problems and writes nothing.

The output folder may not be, contain or lie inside the dataset's folders, and an existing
non-empty folder is only replaced when mmif wrote it (or with --overwrite).
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from pipelines.common import add_overwrite_argument, add_params_argument, load_params

log = logging.getLogger(__name__)

HELP = "build the prepared dataset (synthetic default or a public benchmark on disk)"
DESCRIPTION = __doc__


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--dataset", help="dataset name (default: params dataset.name)")
    p.add_argument("--root", type=Path, help="dataset folder as released upstream")
    p.add_argument(
        "--det-labels",
        type=Path,
        help="folder of YOLO .txt detection labels named by stem (e.g. for MSRS)",
    )
    p.add_argument(
        "--out",
        type=Path,
        default=Path("data/prepared"),
        help="output folder (default: %(default)s)",
    )
    p.add_argument("--check", action="store_true", help="only report problems; write nothing")
    add_overwrite_argument(p)
    add_params_argument(p)


def run(args: argparse.Namespace) -> int:
    from preparation.prepare import prepare_dataset
    from preparation.synthetic import write_synthetic

    # the first stage of a fresh run also runs the library checks of every section, so a
    # bad name (e.g. segment.arch) stops the run here, not after the fusion stages
    params = load_params(args, required=False, check_names=True)
    cfg = params.dataset
    if args.dataset:
        cfg.name = args.dataset
    if args.root:
        cfg.root = str(args.root)
    if args.det_labels:
        cfg.det_labels = str(args.det_labels)
    if cfg.name == "synthetic":
        if args.check:
            log.info("synthetic data is generated: nothing to check")
            return 0
        write_synthetic(params.synthetic, args.out, overwrite=args.overwrite)
        return 0
    result = prepare_dataset(cfg, args.out, check=args.check, overwrite=args.overwrite)
    if args.check:
        problems = list(result or [])
        for problem in problems:
            sys.stdout.write(f"{problem}\n")
        errors = [p for p in problems if p.severity == "error"]
        sys.stdout.write(f"{len(errors)} error(s), {len(problems) - len(errors)} warning(s)\n")
        return 1 if errors else 0
    return 0
