"""`mmif external`: register folders of published fused images as methods of the study.

    mmif external add --root DIR [--name-prefix P] [--dataset NAME] [--check] [--skip-bad]
    mmif external remove NAME [NAME ...] [--keep-outputs]
    mmif external list

`add` finds the method folders of a results root (DIR/<Method>/<stem>.<ext>,
DIR/<Dataset>/<Method>/..., split subfolders inside a method folder, or DIR itself as one
method), checks each against the prepared pairs (stems whatever the extension, sizes, grey or
colour, which splits it covers), prints a table, and registers the usable methods in
external.yaml. dvc.yaml reads that file: `dvc repro` then runs each new method's stages
(fuse_external@NAME, fusion_metrics_external@NAME, detect_external@NAME, segment_external@NAME)
and the report; nothing else reruns. A folder that cannot be scored (no images, a partial test
split, sizes that differ, names that match no pair, a name that is taken) makes the command
fail and write nothing; `--skip-bad` registers the others. Registering again changes nothing.

The prepared pairs come from `--data` (data/prepared); when it is absent (a fresh clone) the
dataset of params.yaml is prepared into a temporary folder for the check and deleted after.
`remove` takes methods out of external.yaml and deletes their pipeline outputs (fused images,
metrics, task results), unless --keep-outputs.
"""

from __future__ import annotations

import argparse
import logging
import shutil
import sys
import tempfile
from pathlib import Path

from mmif.config import Params
from mmif.errors import InputError
from mmif.io import OUTPUT_MARKER, is_mmif_output
from pipelines.common import add_params_argument, load_params

log = logging.getLogger(__name__)

HELP = "register folders of published fused images (mmif external add --root DIR)"
DESCRIPTION = __doc__


def add_arguments(p: argparse.ArgumentParser) -> None:
    sub = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    add = sub.add_parser(
        "add",
        help="check a results root and register its methods",
        description="Check every method folder of a results root against the prepared pairs, "
        "print a table and register the usable methods in the registration file.",
    )
    add.add_argument("--root", type=Path, required=True, help="folder of fused results")
    add.add_argument(
        "--name-prefix",
        default="",
        metavar="P",
        help="put P before every method name (e.g. zoo_), to keep apart methods of two roots",
    )
    add.add_argument(
        "--dataset",
        metavar="NAME",
        help="pick ROOT/NAME/ when the root holds one folder per dataset (default: the folder "
        "named like the prepared dataset)",
    )
    add.add_argument(
        "--check", action="store_true", help="only print the table and problems; write nothing"
    )
    add.add_argument(
        "--skip-bad",
        action="store_true",
        help="register the usable methods even when other folders of the root are refused",
    )
    _common(add)
    remove = sub.add_parser(
        "remove",
        help="take registered methods out again",
        description="Take methods out of the registration file and delete their pipeline outputs.",
    )
    remove.add_argument("names", nargs="+", metavar="NAME", help="registered method name(s)")
    remove.add_argument(
        "--keep-outputs",
        action="store_true",
        help="keep the method's fused images and results (the report leaves them out anyway)",
    )
    _common(remove)
    listing = sub.add_parser("list", help="list the registered methods")
    _common(listing)


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    p.add_argument(
        "--registry",
        type=Path,
        default=None,
        metavar="FILE",
        help="registration file read by dvc.yaml (default: external.yaml next to --params)",
    )
    p.add_argument(
        "--data",
        type=Path,
        default=Path("data/prepared"),
        help="prepared dataset the folders are checked against (default: %(default)s)",
    )
    add_params_argument(p)


def run(args: argparse.Namespace) -> int:
    from mmif.external import REGISTRY_FILE

    if args.registry is None:
        args.registry = Path(args.params).parent / REGISTRY_FILE
    return {"add": _add, "remove": _remove, "list": _list}[args.action](args)


def _add(args: argparse.Namespace) -> int:
    from fusion.registry import available_methods
    from mmif.external import (
        RegistrationError,
        check_root,
        format_table,
        load_registry,
        plan_registration,
        reserved_names,
        save_registry,
    )

    params = load_params(args)
    registry = load_registry(args.registry)
    check_root(args.root)  # before any preparation
    builtins = [m for m in available_methods() if not m.startswith("external")]
    reserved = reserved_names([*params.methods, *params.fusion], builtins)
    with _prepared_pairs(args, params) as pairs:
        plan = plan_registration(
            args.root,
            pairs,
            registry,
            reserved,
            prefix=args.name_prefix,
            dataset=args.dataset,
            base=args.registry.parent,
        )
        sys.stdout.write(format_table(plan.checks, pairs.stems))
    usable, refused = plan.usable, plan.refused
    if args.check:
        sys.stdout.write(
            f"\n{len(usable)} usable, {len(refused)} refused; --check: nothing written\n"
        )
        return 1 if refused else 0
    if refused and (not args.skip_bad or not usable):
        first = refused[0].problems[0]
        n = len(refused) - 1
        more = f" (and {n} more folder{'s' if n > 1 else ''}, see the table)" if n else ""
        hint = (
            f"; fix or remove them, or register the {len(usable)} usable ones with --skip-bad"
            if usable
            else ""
        )
        raise RegistrationError(f"{first}{more}{hint}; nothing was registered")
    changed = save_registry(args.registry, plan.entries)
    counts = {s: sum(c.status == s for c in usable) for s in ("new", "updated", "unchanged")}
    sys.stdout.write(
        f"\n{args.registry}: {counts['new']} new, {counts['updated']} updated, "
        f"{counts['unchanged']} unchanged"
        + (f", {len(refused)} refused (--skip-bad)" if refused else "")
        + ("" if changed else "; the file is unchanged")
        + "\n"
    )
    if counts["new"] or counts["updated"]:
        sys.stdout.write(
            "next: `dvc status` lists their stages (*_external@NAME) and the report; "
            "`dvc repro` scores them\n"
        )
    return 0


def _remove(args: argparse.Namespace) -> int:
    from mmif.external import load_registry, output_paths, save_registry

    registry = load_registry(args.registry)
    unknown = [n for n in args.names if n not in registry]
    if unknown:
        raise InputError(
            f"{args.registry}: '{unknown[0]}' is not registered (registered: "
            f"{', '.join(registry) or 'none'}); see `mmif external list`"
        )
    kept = {n: e for n, e in registry.items() if n not in args.names}
    save_registry(args.registry, kept)
    base = args.registry.parent
    for name in args.names:
        removed = []
        if not args.keep_outputs:
            for rel in output_paths(name):
                path = base / rel
                if path.is_dir():
                    if not is_mmif_output(path):
                        log.warning(
                            "kept %s: mmif did not write it (no %s); delete it yourself if it "
                            "is not yours to keep",
                            path,
                            OUTPUT_MARKER,
                        )
                        continue
                    shutil.rmtree(path)
                    removed.append(str(rel))
                elif path.is_file():
                    path.unlink()
                    removed.append(str(rel))
        sys.stdout.write(
            f"removed '{name}' from {args.registry}"
            + (f"; deleted its outputs: {', '.join(removed)}" if removed else "")
            + "\n"
        )
    return 0


def _list(args: argparse.Namespace) -> int:
    from mmif.external import load_registry

    registry = load_registry(args.registry)
    if not registry:
        sys.stdout.write(f"{args.registry}: no registered methods\n")
    for name, entry in registry.items():
        sys.stdout.write(f"{name}\t{entry['dir']}\n")
    return 0


class _prepared_pairs:
    """The prepared pairs of --data, or of a temporary preparation when it does not exist."""

    def __init__(self, args: argparse.Namespace, params: Params):
        self.args, self.params, self.tmp = args, params, None

    def __enter__(self):
        from mmif.external import PreparedPairs

        data = self.args.data
        if (data / "manifest.json").is_file():
            log.info("checking against the prepared pairs in %s", data)
            return PreparedPairs.load(data)
        from preparation.prepare import prepare_dataset
        from preparation.synthetic import write_synthetic

        self.tmp = tempfile.TemporaryDirectory(prefix="mmif-external-")
        out = Path(self.tmp.name) / "prepared"
        cfg = self.params.dataset
        log.info(
            "%s not prepared yet: preparing dataset '%s' in a temporary folder to check against",
            data,
            cfg.name,
        )
        if cfg.name == "synthetic":
            write_synthetic(self.params.synthetic, out)
        else:
            prepare_dataset(cfg, out, progress=False)
        return PreparedPairs.load(out)

    def __exit__(self, *exc):
        if self.tmp is not None:
            self.tmp.cleanup()
        return False
