"""`mmif task-plan`: which shared task models the study needs, one small JSON file per task.

`frozen` and `finetune` use the same shared model of each seed (trained on the source images);
`retrain` uses none. The shared-model stages (detect_base, segment_base) depend on these files
instead of on `detect.protocol` / `segment.protocol`, so switching between `frozen` and
`finetune` (`dvc exp run -S detect.protocol=finetune`) rewrites identical files and leaves the
shared models as they are, while a switch to or from `retrain` reruns them. Writes
OUT/detect.json and OUT/segment.json: {"task": ..., "shared_model": true | false}, nothing else
(a protocol's name in the file would make every switch retrain the shared models).
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from mmif.errors import OutputError
from mmif.io import check_output_file, write_json
from mmif.protocol import is_paired
from pipelines.common import add_params_argument, load_params

log = logging.getLogger(__name__)

HELP = "write which shared task models the protocols need (frozen / finetune: one per task)"
DESCRIPTION = __doc__
TASKS = ("detect", "segment")


def plan(protocols: dict[str, str]) -> dict[str, dict[str, object]]:
    """{task: the file's content} for the protocol of each task."""
    return {task: {"task": task, "shared_model": is_paired(protocols[task])} for task in TASKS}


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--out",
        type=Path,
        default=Path("results/task_plan"),
        help="folder of the per-task files (default: %(default)s)",
    )
    add_params_argument(p)


def run(args: argparse.Namespace) -> int:
    params = load_params(args)
    protocols = {task: getattr(params, task).protocol for task in TASKS}
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise OutputError(
            f"{out}: is a file; give a folder for the plan files (nothing was changed)"
        )
    files = {task: check_output_file(out / f"{task}.json") for task in TASKS}
    out.mkdir(parents=True, exist_ok=True)
    for task, doc in plan(protocols).items():
        write_json(files[task], doc)
        needed = "one per seed" if doc["shared_model"] else "none"
        log.info("%s (protocol %s): shared model %s", task, protocols[task], needed)
    return 0
