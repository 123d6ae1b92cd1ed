"""Shared plumbing of the downstream-task stages (detection and segmentation).

Two kinds of stage per task (mmif.protocol describes the protocols):
- the shared model (`mmif detect-base`, `mmif segment-base`; DVC stages detect_base,
  segment_base): one task model per seed trained on the source images, used by every method
  under `frozen` and `finetune`; a marker file only under `retrain`;
- per method (`mmif detect`, `mmif segment`): frozen evaluation, fine-tuning or from-scratch
  training, writing the same per-seed files under every protocol (docs/CONTRACTS.md).
"""

from __future__ import annotations

import argparse
import io
import logging
import os
import shutil
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from mmif.config import Params
from mmif.errors import ConfigError
from mmif.io import (
    atomic_dir,
    check_output_dir,
    check_output_file,
    exclusive,
    work_dir_for,
    write_bytes,
    write_json,
    write_text,
)
from mmif.layout import Manifest
from pipelines.common import add_overwrite_argument, add_params_argument
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
        "--base",
        type=Path,
        default=None,
        help="the task's shared models (frozen, finetune; default: models/<task>_base)",
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
    add_params_argument(p)
    _add_output_arguments(p)


def _add_output_arguments(p: argparse.ArgumentParser) -> None:
    # internal: a seed worker of a parallel run writes straight into the parent's temporary --out
    p.add_argument("--seed-worker", action="store_true", help=argparse.SUPPRESS)
    add_overwrite_argument(p)


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


def task_seeds(args: argparse.Namespace, params: Params) -> list[int]:
    """--seeds / --seed, else `seeds` of params.yaml (validated by `mmif.config.load_params`),
    without repeats."""
    if args.seed is not None:
        return [args.seed]
    if args.seeds:
        return list(dict.fromkeys(args.seeds))
    if params.seeds is None:
        raise ConfigError(
            f"{params.source or 'params.yaml'}: no `seeds` list; add e.g. `seeds: [0, 1, 2]` or "
            "pass --seeds"
        )
    return list(params.seeds)


def add_base_arguments(p: argparse.ArgumentParser, task: str) -> None:
    """Options of the shared-model stages (`mmif detect-base`, `mmif segment-base`)."""
    seeds = p.add_mutually_exclusive_group()
    seeds.add_argument(
        "--seeds",
        type=int,
        nargs="+",
        metavar="S",
        help="seeds (default: `seeds` in params.yaml); each writes OUT/seed_S/",
    )
    seeds.add_argument("--seed", type=int, help="a single seed (same as --seeds S)")
    p.add_argument(
        "--jobs",
        type=_jobs,
        default=None,
        help="seeds trained at once in worker processes: auto or a count (default: params.yaml)",
    )
    p.add_argument(
        "--data",
        type=Path,
        default=Path("data/prepared"),
        help="prepared dataset with labels (default: %(default)s)",
    )
    p.add_argument(
        "--out",
        type=Path,
        default=Path(f"models/{task}_base"),
        help="output folder; seed S goes to OUT/seed_S/ (default: %(default)s)",
    )
    p.add_argument("--device", default=None, help="override params: cpu, cuda, 0,1 ...")
    add_params_argument(p)
    _add_output_arguments(p)


def _writes_into_parent_output(args: argparse.Namespace) -> bool:
    """True in a seed worker (it writes into the folder its parent owns, the parent's temporary
    --out) and in torchrun ranks other than 0 (only rank 0 writes files)."""
    rank = int(os.environ.get("RANK", "0")) if int(os.environ.get("WORLD_SIZE", "1")) > 1 else 0
    return bool(getattr(args, "seed_worker", False)) or rank > 0


@contextmanager
def _output_folder(task: str, args: argparse.Namespace, inputs: list, kind: str) -> Iterator[Path]:
    """Build `args.out` under a temporary name (mmif.io.atomic_dir), refusing outputs that are,
    contain or lie inside an input and folders mmif did not write (unless --overwrite); one run
    per output at a time (mmif.io.exclusive)."""
    out = Path(args.out)
    check_output_dir(out, inputs, args.overwrite)
    with (
        exclusive(work_dir_for(out), f"{task} output {out}"),
        atomic_dir(out, inputs=inputs, overwrite=args.overwrite, kind=kind) as tmp,
    ):
        yield tmp


def _train_seeds(
    task: str,
    args: argparse.Namespace,
    seeds: list[int],
    plan_args: tuple[int | str, bool],
    tmp: Path,
    train_one: Callable[[int, Path], None],
) -> None:
    """Train every seed into tmp/seed_S/: in worker processes on the CPU (their logs kept in the
    output's work folder, where a failed run leaves them, and copied into tmp/logs/), else here."""
    jobs, on_cuda = plan_args
    plan = plan_jobs(args.jobs or jobs, len(seeds), on_cuda)
    if plan.parallel:
        logs = work_dir_for(Path(args.out)) / "logs"
        shutil.rmtree(logs, ignore_errors=True)
        run_in_workers(task, args, seeds, plan, out=tmp, logs=logs)
        shutil.copytree(logs, tmp / "logs")
    else:
        for seed in seeds:
            train_one(seed, tmp / f"seed_{seed}")


#: marker file of a shared-model folder
BASE_MARKER = "base.json"


def run_base(
    task: str,
    args: argparse.Namespace,
    params: Params,
    protocol: str,
    jobs: int | str,
    on_cuda: bool,
    train_one: Callable[[int, Path], None],
) -> int:
    """Train the shared task model of every seed into OUT/seed_S/ (frozen, finetune).

    Under `retrain` nothing is trained: OUT/base.json says so, and the stage costs nothing.
    A dataset without the task's labels gets the same marker with the reason. The marker names
    no protocol: frozen and finetune share the model, and a switch between them keeps it (DVC
    reruns this stage only when `mmif task-plan`'s file for the task changes).
    """
    seeds = task_seeds(args, params)
    if _writes_into_parent_output(args):
        for seed in seeds:
            train_one(seed, Path(args.out) / f"seed_{seed}")
        return 0
    needs = "det" if task == "detect" else "seg"
    reason = None
    if protocol == "retrain":
        reason = "protocol retrain: every method trains its own model, no shared model is needed"
    else:
        reason = label_reason(args.data, needs)
    with _output_folder(task, args, [args.data], f"{task} shared models") as tmp:
        if reason:
            log.info("%s shared model: not trained (%s)", task, reason)
            marker = {"trained": False, "reason": reason}
        else:
            _train_seeds(f"{task}-base", args, seeds, (jobs, on_cuda), tmp, train_one)
            done = sorted(
                int(p.parent.name.split("_", 1)[1]) for p in tmp.glob("seed_*/metrics.json")
            )
            marker = {"trained": True, "seeds": done}
        write_json(tmp / BASE_MARKER, marker)
    return 0


def run_task(
    task: str,
    args: argparse.Namespace,
    params: Params,
    protocol: str,
    jobs: int | str,
    on_cuda: bool,
    outputs: dict[str, str],
    train_one: Callable[[int, Path], None],
    evaluate_frozen: Callable[[int, Path, str], None],
) -> int:
    """Score one method for every seed under `protocol`, then write the seed summary.

    train_one(seed, seed_out_dir) fine-tunes (finetune) or trains from scratch (retrain) one
    seed in this process; with several seeds on the CPU they run in parallel worker processes
    instead (see pipelines.seed_runs). evaluate_frozen(seed, seed_out_dir, requested) scores the
    method's test images with the shared model of the seed; all seeds run in this process (an
    evaluation is short). A method with fused test images only is evaluated frozen under
    finetune too (metrics.json says which protocol it got); under retrain it is skipped.
    """
    seeds = task_seeds(args, params)
    out = Path(args.out)
    if _writes_into_parent_output(args):
        for seed in seeds:
            train_one(seed, out / f"seed_{seed}")
        return 0
    inputs = [args.data, args.fused, base_folder(args, task)]
    for path in (args.summary, args.curves):
        if path is not None:
            check_output_file(path, [*inputs, out])
    needs = "det" if task == "detect" else "seg"
    reason = skip_reason(args.data, args.fused, needs, protocol)
    with _output_folder(task, args, inputs, f"{task} results") as tmp:
        if reason:
            for seed in seeds:
                write_skipped(tmp / f"seed_{seed}", outputs, reason, args.method, seed)
        elif effective_protocol(protocol, args.fused) == "frozen":
            if protocol != "frozen":
                log.warning(
                    "%s %s: %s has no fused train split, so it is scored by the shared model "
                    "without fine-tuning (protocol frozen instead of %s)",
                    task,
                    args.method,
                    args.fused,
                    protocol,
                )
            for seed in seeds:
                evaluate_frozen(seed, tmp / f"seed_{seed}", protocol)
        else:
            _train_seeds(task, args, seeds, (jobs, on_cuda), tmp, train_one)
    if args.summary is not None:
        doc = summarise_seeds(task, args.method, out, seeds, args.summary, args.curves)
        headline = SCORES[task][0][0]
        if headline in doc:
            std = doc.get(f"{headline}_std")
            log.info(
                "%s %s (%s): %s %.4f%s over seeds %s",
                task,
                args.method,
                doc.get("protocol", protocol),
                headline,
                doc[headline],
                f" +- {std:.4f}" if std is not None else "",
                ", ".join(map(str, seeds)),
            )
    return 0


def base_folder(args: argparse.Namespace, task: str) -> Path:
    """--base, else models/<task>_base."""
    return Path(args.base) if args.base is not None else Path(f"models/{task}_base")


def effective_protocol(protocol: str, fused: Path) -> str:
    """finetune falls back to frozen for a method without fused train images."""
    if protocol == "finetune" and not (Path(fused) / "train").is_dir():
        return "frozen"
    return protocol


def label_reason(data: Path, needs: str) -> str | None:
    """Why the dataset cannot serve this task (no labels), or None."""
    manifest = Manifest.load(data)
    has = manifest.has_det_labels if needs == "det" else manifest.has_seg_masks
    if not has:
        what = "detection labels" if needs == "det" else "segmentation masks"
        return f"dataset '{manifest.name}' has no {what}"
    return None


def skip_reason(data: Path, fused: Path, needs: str, protocol: str = "retrain") -> str | None:
    """Why this task cannot run on this dataset / method under `protocol`, or None."""
    reason = label_reason(data, needs)
    if reason:
        return reason
    if not (Path(fused) / "test").is_dir():
        return f"{fused} holds no fused test split"
    if protocol == "retrain" and not (Path(fused) / "train").is_dir():
        return (
            f"{fused} holds no fused train split (an external method with test images only?); "
            "protocol retrain trains on it, frozen and finetune score it with the shared model"
        )
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
