"""The training work folder from the user's side: keyed by the output, continued by the trainer,
cleaned after a kill, locked against a second run, and truthful messages."""

from __future__ import annotations

import re
import signal
import time
from pathlib import Path

import pytest
import torch
import yaml
from cli_helpers import error_lines, mmif, start_mmif, tree_digest

from mmif.io import exclusive, work_dir_for

DENSEFUSE = {
    "epochs": 1,
    "patches_per_step": 8,
    "lr": 1e-3,
    "patch_size": 16,
    "patches_per_image": 1,
}


def _params(folder: Path, **densefuse) -> Path:
    path = folder / "params.yaml"
    section = {**DENSEFUSE, "device": "cpu", **densefuse}
    path.write_text(yaml.safe_dump({"fusion": {"densefuse": section}}))
    return path


def _train(cwd: Path, out: str | Path, data: Path, params: Path) -> tuple[int, str]:
    return mmif("train", "--method", "densefuse", "--data", data, "--out", out, "--params", params, cwd=cwd)  # fmt: skip


def _checkpoint(out: Path) -> Path:
    return work_dir_for(out) / "checkpoints" / "last.pt"


@pytest.mark.slow
def test_two_outputs_of_one_name_never_share_a_work_folder(tmp_path, tiny_synthetic):
    params_a = _params(tmp_path, lr=1e-3)
    status, log = _train(tmp_path, "A/densefuse", tiny_synthetic, params_a)
    assert status == 0, log
    a_ckpt = _checkpoint(tmp_path / "A" / "densefuse")
    assert a_ckpt.is_file() and "training checkpoint kept in" in log
    before = tree_digest(tmp_path / "A")
    (tmp_path / "other").mkdir()
    params_b = _params(tmp_path / "other", lr=2e-3)  # other parameters, same output name
    status, log = _train(tmp_path, "B/densefuse", tiny_synthetic, params_b)
    assert status == 0, log
    assert _checkpoint(tmp_path / "B" / "densefuse").is_file()
    assert tree_digest(tmp_path / "A") == before  # A's checkpoint untouched
    # nothing relative to the current folder, nothing in git's view
    assert not (tmp_path / ".cache").exists()
    assert (tmp_path / "A" / ".mmif-work" / ".gitignore").read_text().strip().endswith("*")


@pytest.mark.slow
def test_same_command_from_another_folder_continues(tmp_path, tiny_synthetic):
    params = _params(tmp_path)
    (tmp_path / "one").mkdir()
    (tmp_path / "two").mkdir()
    status, log = _train(tmp_path / "one", "../models/densefuse", tiny_synthetic, params)
    assert status == 0, log
    status, log = _train(tmp_path / "two", "../models/densefuse", tiny_synthetic, params)
    assert status == 0, log
    assert "continuing from" in log and "1 of 1 epochs finished" in log
    assert "densefuse epoch 1" not in log  # nothing trained again


@pytest.mark.slow
def test_more_epochs_continue_other_changes_start_afresh(tmp_path, tiny_synthetic):
    status, log = _train(tmp_path, "models/densefuse", tiny_synthetic, _params(tmp_path, epochs=1))
    assert status == 0, log
    status, log = _train(tmp_path, "models/densefuse", tiny_synthetic, _params(tmp_path, epochs=2))
    assert status == 0, log
    assert "1 of 2 epochs finished" in log and "densefuse epoch 1:" not in log
    status, log = _train(tmp_path, "models/densefuse", tiny_synthetic, _params(tmp_path, epochs=2, lr=5e-4))  # fmt: skip
    assert status == 0, log
    assert "not continued (lr changed from 0.001 to 0.0005); training from scratch" in log


@pytest.mark.slow
def test_coconet_more_epochs_continue_through_the_cli(tmp_path, tiny_synthetic):
    def params(epochs: int) -> Path:
        section = {
            "stage1": {"epochs": epochs, "patches_per_step": 4, "lr": 1e-3},
            "stage2": {"epochs": 0, "patches_per_step": 4, "lr": 1e-4},
            "patch_size": 32,
            "patches_per_image": 1,
            "bn_recalibration": 60,  # a tenth of the default: the resume is what is tested
            "device": "cpu",
        }
        (tmp_path / "params.yaml").write_text(yaml.safe_dump({"fusion": {"coconet": section}}))
        return tmp_path / "params.yaml"

    for epochs in (1, 2):
        status, log = mmif(
            "train", "--method", "coconet", "--data", tiny_synthetic, "--out", "models/coconet",
            "--params", params(epochs), cwd=tmp_path,
        )  # fmt: skip
        assert status == 0, log
    assert re.search(r"resuming from .*: stage 1, [1-9]\d* steps done", log), log
    assert "training from scratch" not in log


def test_a_second_run_on_the_same_output_is_refused_while_one_runs(tmp_path, tiny_synthetic):
    params = _params(tmp_path)
    work = work_dir_for(tmp_path / "models" / "densefuse")
    with exclusive(work, "test"):
        status, log = _train(tmp_path, "models/densefuse", tiny_synthetic, params)
    assert status == 1 and "being written by another mmif process" in error_lines(log)[0]
    assert not (tmp_path / "models" / "densefuse").exists()


def _run_until_checkpoint(tmp_path: Path, data: Path, params: Path) -> object:
    proc = start_mmif(
        "train", "--method", "densefuse", "--data", data, "--out", "models/densefuse",
        "--params", params, cwd=tmp_path,
    )  # fmt: skip
    ckpt = _checkpoint(tmp_path / "models" / "densefuse")
    deadline = time.monotonic() + 300
    while not ckpt.exists():
        if proc.poll() is not None:
            pytest.fail(f"training ended before its first checkpoint:\n{proc.communicate()[1]}")
        if time.monotonic() > deadline:
            proc.kill()
            pytest.fail("no checkpoint within 300 s")
        time.sleep(0.02)
    return proc


# long enough to be stopped after its first epoch: 12 images x 16 patches / 8 per step
LONG = {"epochs": 200, "patches_per_image": 16}


@pytest.mark.slow
def test_a_killed_training_leaves_nothing_the_next_run_does_not_clean_or_reuse(
    tmp_path, tiny_synthetic
):
    params = _params(tmp_path, **LONG)
    proc = _run_until_checkpoint(tmp_path, tiny_synthetic, params)
    proc.send_signal(signal.SIGKILL)
    proc.communicate()
    models = tmp_path / "models"
    assert [p.name for p in models.iterdir() if ".densefuse.tmp-" in p.name], list(models.iterdir())
    done = torch.load(_checkpoint(models / "densefuse"), weights_only=True)["epoch"] + 1
    # the same command (one more epoch, so the run ends soon) cleans and continues
    status, log = _train(tmp_path, "models/densefuse", tiny_synthetic, _params(tmp_path, **{**LONG, "epochs": done + 1}))  # fmt: skip
    assert status == 0, log
    assert "left behind by an interrupted run" in log
    assert f"{done} of {done + 1} epochs finished" in log
    leftovers = [p.name for p in models.rglob("*") if ".tmp-" in p.name or ".old-" in p.name]
    assert leftovers == []
    assert (models / "densefuse" / "densefuse.pt").is_file()


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_an_interrupted_training_says_what_is_kept_and_where(tmp_path, tiny_synthetic, sig):
    params = _params(tmp_path, **LONG)
    proc = _run_until_checkpoint(tmp_path, tiny_synthetic, params)
    proc.send_signal(sig)
    _, stderr = proc.communicate(timeout=120)
    assert proc.returncode == (130 if sig == signal.SIGINT else 128 + sig), stderr
    ckpt = _checkpoint(tmp_path / "models" / "densefuse")
    assert f"checkpoint (last finished epoch) is kept in {ckpt}" in stderr
    assert "run the same command again to continue" in stderr
    if sig == signal.SIGINT:
        assert "interrupted: unfinished outputs were discarded" in stderr
    else:
        assert "terminated: unfinished outputs were discarded" in stderr
    assert "Traceback" not in stderr
    models = tmp_path / "models"
    assert sorted(p.name for p in models.iterdir()) == [".mmif-work"]  # temporary folder removed
    assert ckpt.is_file()


def test_work_folder_is_next_to_the_output(tmp_path, monkeypatch):
    assert work_dir_for(tmp_path / "models" / "x") == tmp_path / "models" / ".mmif-work" / "x"
    monkeypatch.chdir(tmp_path)
    assert work_dir_for("models/x") == tmp_path.resolve() / "models" / ".mmif-work" / "x"
