"""`mmif task-plan`: the files the shared-model stages depend on instead of the protocols.

A switch between frozen and finetune must leave them byte-identical (so DVC keeps the trained
shared models), a switch to or from retrain must change them (so DVC trains or drops them)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from cli_helpers import error_lines, mmif

from pipelines.task_plan import TASKS, plan

REPO = Path(__file__).resolve().parents[2]


def _params(tmp_path: Path, detect: str, segment: str) -> Path:
    values = yaml.safe_load((REPO / "params.yaml").read_text())
    values["detect"]["protocol"] = detect
    values["segment"]["protocol"] = segment
    path = tmp_path / f"params-{detect}-{segment}.yaml"
    path.write_text(yaml.safe_dump(values, sort_keys=False))
    return path


def _files(tmp_path: Path, detect: str, segment: str) -> dict[str, bytes]:
    out = tmp_path / f"plan-{detect}-{segment}"
    status, log = mmif("task-plan", "--params", _params(tmp_path, detect, segment), "--out", out)
    assert status == 0, log
    assert sorted(p.name for p in out.iterdir()) == [f"{t}.json" for t in TASKS]
    return {t: (out / f"{t}.json").read_bytes() for t in TASKS}


def test_the_plan_says_which_protocols_need_a_shared_model():
    assert plan({"detect": "frozen", "segment": "finetune"}) == plan(
        {"detect": "finetune", "segment": "frozen"}
    )
    got = plan({"detect": "retrain", "segment": "frozen"})
    assert got["detect"]["shared_model"] is False and got["segment"]["shared_model"] is True


def test_frozen_and_finetune_write_the_same_files_and_retrain_others(tmp_path):
    frozen = _files(tmp_path, "frozen", "frozen")
    assert _files(tmp_path, "finetune", "finetune") == frozen
    mixed = _files(tmp_path, "retrain", "finetune")
    assert mixed["segment"] == frozen["segment"] and mixed["detect"] != frozen["detect"]


@pytest.mark.parametrize("protocol", ["frozen", "bogus"])
def test_a_file_as_output_or_a_bad_protocol_is_one_clear_error(tmp_path, protocol):
    blocker = tmp_path / "plan"
    blocker.write_text("a user's file\n")
    status, log = mmif(
        "task-plan", "--params", _params(tmp_path, protocol, "frozen"), "--out", blocker
    )
    errors = error_lines(log)
    assert status == 1 and len(errors) == 1 and "Traceback" not in log, log
    assert ("protocol" if protocol == "bogus" else str(blocker)) in errors[0], errors[0]
    assert blocker.read_text() == "a user's file\n"
