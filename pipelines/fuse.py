"""`mmif fuse`: fuse image pairs with one method.

Two modes:
- folders:  mmif fuse --method NAME --ir DIR --vis DIR --out DIR [--weights FILE] [--device DEV]
- pipeline: mmif fuse --method NAME --data data/prepared --model-dir models/NAME --out data/fused/NAME
  (fuses every split of a prepared dataset; parameters from params.yaml `fusion.NAME`). With
  --splits study (as in dvc.yaml) only the splits the study of params.yaml reads: every split
  when a task trains on fused images (`detect.protocol` or `segment.protocol` finetune or
  retrain), else the test split and those of the fusion metrics and the report's grid
  (`metrics.split`, `report.split`).
- registered: mmif fuse --method external:NAME --external external.yaml --data data/prepared
  --out data/fused/NAME (a method registered with `mmif external add`: its images are checked
  against the prepared pairs and copied for every split it covers).

Learned methods (coconet, densefuse) need trained weights (--weights or --model-dir); --untrained
fuses with a randomly initialised network instead (meaningless images, for smoke tests only).
The output folder is replaced only if mmif wrote it (or with --overwrite), never over an input.
"""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

from fusion.registry import (
    MethodEntry,
    create_method,
    is_external,
    is_trainable,
    method_entry,
)
from fusion.runner import fuse_pairs
from mmif.config import Params
from mmif.errors import ConfigError, InputError, MissingInputError
from mmif.io import atomic_dir, check_output_dir, write_json
from mmif.layout import SPLITS, SourcePair, list_pairs, pair_folders
from pipelines.common import add_overwrite_argument, add_params_argument, load_params

log = logging.getLogger(__name__)

HELP = "fuse image pairs with one fusion method"
DESCRIPTION = __doc__


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--method",
        required=True,
        help="method name (see `mmif methods`), e.g. coconet, max, external:NAME",
    )
    p.add_argument("--ir", type=Path, help="folder of infrared (first source) images")
    p.add_argument("--vis", type=Path, help="folder of visible (second source) images, grey or RGB")
    p.add_argument(
        "--data", type=Path, help="prepared dataset (pipeline mode): fuse all of its splits"
    )
    p.add_argument(
        "--model-dir",
        type=Path,
        help="trained model folder written by `mmif train` (pipeline mode)",
    )
    p.add_argument("--out", type=Path, required=True, help="output folder, one <stem>.png per pair")
    p.add_argument(
        "--weights", type=Path, help="weights file for learned methods (coconet, densefuse)"
    )
    p.add_argument(
        "--untrained",
        action="store_true",
        help="let a learned method fuse without weights: a randomly initialised network whose "
        "images mean nothing (smoke tests only)",
    )
    p.add_argument(
        "--device", default=None, help="cpu, cuda, cuda:1 or auto (default: params or auto)"
    )
    p.add_argument(
        "--batch-size", type=int, default=None, help="pairs of the same size fused together"
    )
    p.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="method parameter override, e.g. --set dir=fused/tardal (repeatable); "
        "a key the method does not take is an error",
    )
    p.add_argument(
        "--splits",
        choices=("all", "study"),
        default="all",
        help="pipeline mode: fuse every split (all, the default) or only those the study of "
        "params.yaml reads (study: under protocol frozen for both tasks the test split and "
        "metrics.split / report.split; every split otherwise)",
    )
    p.add_argument(
        "--external",
        type=Path,
        metavar="FILE",
        help="registration file of `mmif external add` (external.yaml): read the folder of "
        "method external:NAME from it instead of params.yaml",
    )
    add_overwrite_argument(p)
    add_params_argument(p)


def run(args: argparse.Namespace) -> int:
    params = load_params(args, required=args.data is not None and args.external is None)
    if args.external is not None:
        where = f"{args.external}:external.{args.method}"
        raw = _registered_section(args.method, args.external)
    else:
        where = f"{args.params}:fusion.{args.method}"
        raw = dict((params.raw.get("fusion") or {}).get(args.method) or {})
    entry = _entry(args, raw, where)
    cfg = entry.params
    batch_size = int(args.batch_size or entry.fuse_batch_size)
    device = args.device or getattr(cfg, "device", "auto")
    weights = args.weights or _weights_from_model_dir(args.model_dir)
    if weights is None and is_trainable(args.method) and not args.untrained:
        raise InputError(
            f"{args.method} needs trained weights: pass --weights FILE (e.g. MODEL_DIR/{args.method}.pt "
            f"from `mmif train --method {args.method} --out MODEL_DIR`) or --model-dir MODEL_DIR; "
            "--untrained fuses with a randomly initialised network (meaningless images)"
        )
    out_inputs = [args.ir, args.vis, args.data, args.model_dir, weights, getattr(cfg, "dir", None)]
    check_output_dir(args.out, out_inputs, args.overwrite)
    method = create_method(args.method, cfg, weights=weights, device=device)
    log.info("method %s on %s, batch %d", args.method, method.device, batch_size)

    if args.data is not None:
        splits = study_splits(params) if args.splits == "study" else SPLITS
        if splits != SPLITS:
            log.info(
                "fusing the %s split(s) only: both tasks score frozen and the fusion metrics and "
                "report read no other (a finetune or retrain protocol fuses every split)",
                ", ".join(splits),
            )
        jobs = {
            split: [SourcePair(p.stem, p.ir, p.vis) for p in list_pairs(args.data, split)]
            for split in splits
        }
        jobs = {k: v for k, v in jobs.items() if v}
        if not jobs and splits == SPLITS:
            raise MissingInputError(f"{args.data}: no prepared pairs; run `mmif prepare` first")
        if not jobs:
            raise MissingInputError(
                f"{args.data}: no prepared pairs in the split(s) the study reads "
                f"({', '.join(splits)}); prepare a dataset with a test split, or fuse every "
                "split with --splits all"
            )
    else:
        if args.ir is None or args.vis is None:
            raise InputError("give --ir and --vis folders (or --data for a prepared dataset)")
        jobs = {".": pair_folders(args.ir, args.vis)}

    if is_external(args.method):
        jobs = _external_jobs(method, jobs, pipeline=args.data is not None, data=args.data)

    n = 0
    with atomic_dir(
        args.out, inputs=out_inputs, overwrite=args.overwrite, kind="fused images"
    ) as tmp:
        for split, pairs in jobs.items():
            if is_external(args.method):
                method.use_split(split if split != "." else None)
            n += fuse_pairs(
                method,
                pairs,
                tmp / split,
                batch_size=batch_size,
                desc=f"fuse {args.method} {split}",
            )
        write_json(
            tmp / "info.json", {**method.info(), "device": str(method.device), "n_images": n}
        )
    log.info("wrote %d fused images to %s", n, args.out)
    return 0


def study_splits(params: Params) -> tuple[str, ...]:
    """The splits of a method's fused images that the study of `params` reads, in SPLITS order:
    every split when a task trains on them (protocol finetune or retrain), else the test split
    (the frozen task scores) and those of the fusion metrics and the report's image grid."""
    if {params.detect.protocol, params.segment.protocol} != {"frozen"}:
        return SPLITS
    wanted = {"test", params.metrics.split, params.report.split}
    return tuple(split for split in SPLITS if split in wanted)


def _entry(args: argparse.Namespace, raw: dict, where: str) -> MethodEntry:
    """The method's entry: `raw` (its params.yaml or external.yaml mapping) with the --set
    KEY=VALUE overrides (YAML values), validated."""
    for item in args.set:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise InputError(f"--set {item}: expected KEY=VALUE")
        raw[key] = _parse_value(value)
    try:
        return method_entry(args.method, raw, where)
    except ConfigError as exc:
        if not args.set or "--set" in str(exc):
            raise
        raise ConfigError(
            f"{exc} (method parameters come from {where.replace(':', ' ', 1)} and --set)"
        ) from None


def _weights_from_model_dir(model_dir: Path | None) -> Path | None:
    if model_dir is None:
        return None
    card = model_dir / "model.json"
    if not card.exists():
        raise MissingInputError(
            f"{card}: missing; run `mmif train --method ... --out {model_dir}` first"
        )
    try:
        weights = json.loads(card.read_text()).get("weights")
    except (OSError, UnicodeDecodeError, ValueError, AttributeError) as exc:
        raise InputError(
            f"{card}: not a readable model card ({exc}); re-run `mmif train --out {model_dir}`"
        ) from exc
    return model_dir / weights if weights else None


def _registered_section(method: str, registry_file: Path) -> dict:
    """`{"dir": ...}` of a method registered in `registry_file` (`mmif external add`), its
    folder relative to that file's folder."""
    from mmif.external import load_registry

    if not is_external(method):
        raise InputError(
            f"--external {registry_file}: give the registered method as --method external:NAME"
        )
    name = method.split(":", 1)[1] if ":" in method else method.split("_", 1)[1]
    registry = load_registry(registry_file)
    if name not in registry:
        raise ConfigError(
            f"{registry_file}: no registered method '{name}' (registered: "
            f"{', '.join(registry) or 'none'}); register it with `mmif external add --root DIR`"
        )
    folder = Path(registry[name]["dir"])
    if not folder.is_absolute():
        folder = registry_file.parent / folder
    return {"dir": str(folder)}


def _external_jobs(
    method, jobs: dict[str, list[SourcePair]], pipeline: bool, data: Path | None = None
) -> dict[str, list[SourcePair]]:
    """Keep the splits an external folder covers and check them before anything is written.

    In the pipeline, `mmif.external.check_method` decides (the check of `mmif external add`):
    a split is covered when the folder (its `<split>/` subfolder, else the folder and all its
    split subfolders) has an image of every pair of the split, of the pair's size; the test
    split must be covered. A flat folder of test images only (the usual published results)
    covers the test split, so task stages that need fused training images score it with the
    shared models or skip it.
    """
    from fusion.methods.external import validate_external
    from mmif.external import PreparedPairs, check_method, covered_splits
    from mmif.io import read_image

    folder = Path(method.params["dir"])
    if pipeline:
        check = check_method(folder, PreparedPairs.load(data), method.name)
        covered = covered_splits(check)
        for note in check.notes:
            log.info("%s: %s", folder, note)
        log.info("external method %s covers splits: %s", method.name, ", ".join(covered))
        return {split: jobs[split] for split in covered}
    for pairs in jobs.values():
        sizes = {p.stem: read_image(p.ir).shape[:2] for p in pairs}
        validate_external(folder, list(sizes), sizes)
    return jobs


def _parse_value(text: str):
    import yaml

    return yaml.safe_load(text)
