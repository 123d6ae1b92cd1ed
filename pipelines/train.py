"""`mmif train`: train a learned fusion method (CoCoNet, DenseFuse) on a prepared dataset.

Writes `<out>/model.json` (the model card the fuse stage reads) and, for learned methods, the
weights file named after the method (e.g. `coconet.pt`), its loss curve and training metrics.
For methods without training it writes only the model card, so every method has the same
train -> fuse chain in dvc.yaml.

Training runs in the output's work folder `<parent>/.mmif-work/<name>/` (e.g.
models/.mmif-work/coconet/, next to models/coconet): keyed by the output's absolute path, so two
outputs never share one and the command finds it from any current folder. The trainer's
checkpoint there survives an interrupted run (the same command continues from it) and a
finished one (a run with more epochs continues; other changes start afresh).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import shutil
from pathlib import Path

from fusion.registry import is_external, is_trainable, train_method
from mmif.io import (
    atomic_dir,
    check_output_dir,
    check_output_file,
    exclusive,
    work_dir_for,
    write_json,
)
from pipelines.common import (
    add_overwrite_argument,
    add_params_argument,
    load_params,
)

log = logging.getLogger(__name__)

HELP = "train a learned fusion method (no-op model card for the others)"
DESCRIPTION = __doc__


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--method", required=True, help="method name, e.g. coconet or densefuse")
    p.add_argument(
        "--data",
        type=Path,
        default=Path("data/prepared"),
        help="prepared dataset (default: %(default)s)",
    )
    p.add_argument("--out", type=Path, required=True, help="model folder, e.g. models/coconet")
    p.add_argument(
        "--metrics", type=Path, help="also copy train_metrics.json here (a DVC metrics file)"
    )
    add_overwrite_argument(p)
    add_params_argument(p)


def run(args: argparse.Namespace) -> int:
    # the method's parameters (`fusion.<method>` without the fuse stage's fuse_batch_size)
    cfg = load_params(args).method(args.method).params
    trainable = not is_external(args.method) and is_trainable(args.method)
    summary: dict = {"method": args.method, "trainable": trainable}
    card: dict = {
        "method": args.method,
        "trainable": trainable,
        "weights": None,
        "params": dataclasses.asdict(cfg),
    }
    inputs = [args.data]
    check_output_dir(args.out, inputs, args.overwrite)  # before any training
    if args.metrics:
        check_output_file(args.metrics, inputs)
    work = work_dir_for(args.out) if trainable else None
    with atomic_dir(args.out, inputs=inputs, overwrite=args.overwrite, kind="model") as tmp:
        if work is not None:
            weights = _train(args, cfg, work)
            for f in work.iterdir():  # final weights, loss curve, metrics; not the checkpoints
                if f.is_file() and not f.name.startswith("."):
                    shutil.copy2(f, tmp / f.name)
            metrics_file = tmp / "train_metrics.json"
            if metrics_file.exists():
                summary.update(json.loads(metrics_file.read_text()))
            # how much training the weights had: a budget in epochs means little without the
            # dataset's size, so the card states the optimiser steps and patches too
            card["training"] = {
                k: v
                for k, v in summary.items()
                if any(w in k for w in ("epochs", "steps", "patches"))
            }
            card["weights"] = weights.name
        write_json(tmp / "model.json", card)
    if work is not None:
        log.info(
            "training checkpoint kept in %s (%s): a later run of this command with more epochs "
            "continues from it, other changes of data, parameters or code start afresh; delete "
            "the folder to free the space",
            work / CHECKPOINTS,
            _size(work / CHECKPOINTS),
        )
    if args.metrics:
        write_json(args.metrics, summary)
    log.info("model card written to %s", args.out / "model.json")
    return 0


#: where the trainers keep their resumable checkpoint inside the work folder
CHECKPOINTS = "checkpoints"


def _train(args: argparse.Namespace, cfg: object, work: Path) -> Path:
    """Train in the output's own work folder (`mmif.io.work_dir_for`), locked against a second
    run writing the same output. The trainer decides from its checkpoint there whether to
    continue (same data, parameters and code; epochs may have grown) or start afresh."""
    with exclusive(work, f"the training work folder of {args.out}"):
        _remove_partial_files(work)
        log.info("training %s in its work folder %s (checkpoints)", args.method, work)
        try:
            return train_method(args.method, args.data, work, cfg)
        except BaseException:
            saved = sorted((work / CHECKPOINTS).glob("*.pt"))
            if saved:
                log.warning(
                    "training stopped; its checkpoint (last finished epoch) is kept in %s: run the "
                    "same command again to continue from it",
                    saved[-1],
                )
            raise


def _remove_partial_files(work: Path) -> None:
    """Delete temporary files a killed run left mid-write (`.<name>.tmp-<pid>`)."""
    for path in [*work.glob(".*.tmp-*"), *work.glob(f"{CHECKPOINTS}/.*.tmp-*")]:
        if path.is_file():
            path.unlink(missing_ok=True)
            log.info("removed %s, left behind by an interrupted run", path)


def _size(folder: Path) -> str:
    total = (
        sum(p.stat().st_size for p in folder.rglob("*") if p.is_file()) if folder.is_dir() else 0
    )
    return f"{total / 1e6:.0f} MB" if total >= 1e6 else f"{total / 1e3:.0f} kB"
