"""Shared plumbing of the two downstream-task stages (detection and segmentation)."""

from __future__ import annotations

import argparse
import io
import logging
import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from mmif.config import ConfigError
from mmif.data.layout import Manifest
from mmif.io import (
    atomic_dir,
    check_output_dir,
    check_output_file,
    exclusive,
    work_dir_for,
    write_bytes,
    write_text,
)
from pipelines.common import add_overwrite_argument, add_params_argument, write_json
from pipelines.seed_runs import plan_jobs, run_in_workers
from pipelines.seed_summary import SCORES, summarise_seeds

log = logging.getLogger(__name__)


def add_task_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--method", required=True, help="fusion method whose fused images are used")
    seeds = p.add_mutually_exclusive_group()
    seeds.add_argument(
        "--seeds",
        type=int,
        nargs="+",
        metavar="S",
        help="training seeds (default: `seeds` in params.yaml); each writes OUT/seed_S/",
    )
    seeds.add_argument("--seed", type=int, help="a single training seed (same as --seeds S)")
    p.add_argument(
        "--jobs",
        type=_jobs,
        default=None,
        help="seeds trained at once in worker processes: auto or a count "
        "(default: the section's `jobs` in params.yaml; auto = all seeds at once on CPU, "
        "one at a time on CUDA)",
    )
    p.add_argument(
        "--data",
        type=Path,
        default=Path("data/prepared"),
        help="prepared dataset with labels (default: %(default)s)",
    )
    p.add_argument(
        "--fused", type=Path, required=True, help="the method's fused images (data/fused/NAME)"
    )
    p.add_argument(
        "--out",
        type=Path,
        required=True,
        help="output folder of this method (results/TASK/NAME); seed S goes to OUT/seed_S/",
    )
    p.add_argument(
        "--summary",
        type=Path,
        default=None,
        metavar="FILE.json",
        help="also write the scores' mean and std over the seeds here (the DVC metrics file)",
    )
    p.add_argument(
        "--curves",
        type=Path,
        default=None,
        metavar="FILE.csv",
        help="also write the training curves averaged over the seeds here (the DVC plots file)",
    )
    p.add_argument("--device", default=None, help="override params: cpu, cuda, 0,1 ...")
    # internal: a seed worker of a parallel run writes straight into the parent's temporary --out
    p.add_argument("--seed-worker", action="store_true", help=argparse.SUPPRESS)
    add_overwrite_argument(p)
    add_params_argument(p)


def _jobs(text: str) -> str | int:
    if text == "auto":
        return text
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected auto or a positive count, got {text!r}")
    return value


def task_seeds(args: argparse.Namespace, params: dict[str, Any]) -> list[int]:
    """--seeds / --seed, else `seeds` of params.yaml, without repeats."""
    if args.seed is not None:
        return [args.seed]
    if args.seeds:
        return list(dict.fromkeys(args.seeds))
    seeds = params.get("seeds")
    if seeds is None:
        raise ConfigError(
            "params.yaml: no `seeds` list; add e.g. `seeds: [0, 1, 2]` or pass --seeds"
        )
    if isinstance(seeds, int) and not isinstance(seeds, bool):
        seeds = [seeds]
    if not (
        isinstance(seeds, list)
        and seeds
        and all(isinstance(s, int) and not isinstance(s, bool) for s in seeds)
    ):
        raise ConfigError(
            f"params.yaml:seeds: expected a non-empty list of integers, got {seeds!r}"
        )
    return list(dict.fromkeys(seeds))


def run_task(
    task: str,
    args: argparse.Namespace,
    params: dict[str, Any],
    jobs: int | str,
    on_cuda: bool,
    outputs: dict[str, str],
    train_one: Callable[[int, Path], None],
) -> int:
    """Train and evaluate `task` on one method for every seed, then write the seed summary.

    train_one(seed, seed_out_dir) runs one seed in this process; with several seeds on the CPU
    they run in parallel worker processes instead (see pipelines.seed_runs).
    The output folder is built under a temporary name and replaces `args.out` only when every
    seed finished (`mmif.io.atomic_dir`); worker logs are kept in the output's work folder
    (`mmif.io.work_dir_for`), where a failed run leaves them, and copied into `<out>/logs/`.
    """
    seeds = task_seeds(args, params)
    out = Path(args.out)
    # a seed worker writes into the folder its parent owns (the parent's temporary --out); under
    # torchrun only rank 0 writes files, so the other ranks leave the output folder alone
    rank = int(os.environ.get("RANK", "0")) if int(os.environ.get("WORLD_SIZE", "1")) > 1 else 0
    if getattr(args, "seed_worker", False) or rank > 0:
        for seed in seeds:
            train_one(seed, out / f"seed_{seed}")
        return 0
    inputs = [args.data, args.fused]
    check_output_dir(out, inputs, args.overwrite)
    for path in (args.summary, args.curves):
        if path is not None:
            check_output_file(path, [*inputs, out])
    needs = "det" if task == "detect" else "seg"
    reason = skip_reason(args.data, args.fused, needs)
    work = work_dir_for(out)
    with (
        exclusive(work, f"{task} output {out}"),
        atomic_dir(out, inputs=inputs, overwrite=args.overwrite, kind=f"{task} results") as tmp,
    ):
        if reason:
            for seed in seeds:
                write_skipped(tmp / f"seed_{seed}", outputs, reason, args.method, seed)
        else:
            plan = plan_jobs(args.jobs or jobs, len(seeds), on_cuda)
            if plan.parallel:
                logs = work / "logs"
                shutil.rmtree(logs, ignore_errors=True)
                run_in_workers(task, args, seeds, plan, out=tmp, logs=logs)
                shutil.copytree(logs, tmp / "logs")
            else:
                for seed in seeds:
                    train_one(seed, tmp / f"seed_{seed}")
    if args.summary is not None:
        doc = summarise_seeds(task, args.method, out, seeds, args.summary, args.curves)
        headline = SCORES[task][0][0]
        if headline in doc:
            std = doc.get(f"{headline}_std")
            log.info(
                "%s %s: %s %.4f%s over seeds %s",
                task,
                args.method,
                headline,
                doc[headline],
                f" +- {std:.4f}" if std is not None else "",
                ", ".join(map(str, seeds)),
            )
    return 0


def skip_reason(data: Path, fused: Path, needs: str) -> str | None:
    """Why this task cannot run on this dataset / method, or None."""
    manifest = Manifest.load(data)
    has = manifest.has_det_labels if needs == "det" else manifest.has_seg_masks
    if not has:
        what = "detection labels" if needs == "det" else "segmentation masks"
        return f"dataset '{manifest.name}' has no {what}"
    if not (fused / "train").is_dir():
        return f"{fused} holds no fused train split (an external method with test images only?)"
    return None


def write_skipped(out: Path, files: dict[str, str], reason: str, method: str, seed: int) -> None:
    """Write the declared outputs of a skipped task so DVC sees a complete stage."""
    log.warning("skipping %s seed %d: %s", method, seed, reason)
    for name, kind in files.items():
        path = out / name
        if kind == "json":
            write_json(path, {"skipped": True, "reason": reason, "method": method, "seed": seed})
        elif kind == "csv":
            write_text(path, "epoch\n")
        elif kind == "npz":
            buf = io.BytesIO()
            empty = np.array([], dtype=str)
            np.savez(buf, stems=empty, confusion=np.zeros((0, 0, 0), np.int64), class_names=empty)
            write_bytes(path, buf.getvalue())
