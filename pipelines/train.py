"""`mmif train`: train a learned fusion method (CoCoNet, DenseFuse) on a prepared dataset.

Writes `<out>/model.json` (the model card the fuse stage reads) and, for learned methods, the
weights file named after the method (e.g. `coconet.pt`), its loss curve and training metrics.
For methods without training it writes only the model card, so every method has the same
train -> fuse chain in dvc.yaml.
"""

from __future__ import annotations

import argparse
import json
import logging
import shutil
from pathlib import Path

from fusion.registry import is_external, is_trainable, train_method
from mmif.io import atomic_dir
from pipelines.common import add_params_argument, load_params, method_section, write_json

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
    add_params_argument(p)


def run(args: argparse.Namespace) -> int:
    params = load_params(args)
    section = method_section(params, args.method)
    section.pop("fuse_batch_size", None)  # the fuse stage's setting, not the method's
    trainable = not is_external(args.method) and is_trainable(args.method)
    summary: dict = {"method": args.method, "trainable": trainable}
    card: dict = {"method": args.method, "trainable": trainable, "weights": None, "params": section}
    with atomic_dir(args.out) as tmp:
        if trainable:
            work = _work_dir(args.out, section)
            weights = train_method(args.method, args.data, work, section)
            for f in work.iterdir():  # final weights, loss curve, metrics; not the checkpoints
                if f.is_file() and not f.name.startswith("."):
                    shutil.copy2(f, tmp / f.name)
            metrics_file = tmp / "train_metrics.json"
            if metrics_file.exists():
                summary.update(json.loads(metrics_file.read_text()))
            card["weights"] = weights.name
        write_json(tmp / "model.json", card)
    if trainable:
        shutil.rmtree(_work_dir_path(args.out), ignore_errors=True)
    if args.metrics:
        write_json(args.metrics, summary)
    log.info("model card written to %s", args.out / "model.json")
    return 0


def _work_dir_path(out: Path) -> Path:
    # outside the DVC output (which DVC deletes before a run), so checkpoints survive a kill
    return Path(".cache") / "train" / out.resolve().name


def _work_dir(out: Path, section: dict) -> Path:
    """Persistent training folder; resumed only when the parameters are unchanged."""
    work = _work_dir_path(out)
    stamp = work / ".params.json"
    wanted = json.dumps(section, sort_keys=True)
    if work.exists() and (not stamp.exists() or stamp.read_text() != wanted):
        log.info("parameters changed since the interrupted run in %s: starting afresh", work)
        shutil.rmtree(work)
    if work.exists():
        log.info("resuming the interrupted training in %s", work)
    work.mkdir(parents=True, exist_ok=True)
    stamp.write_text(wanted)
    return work
