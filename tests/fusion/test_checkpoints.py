"""The one resume policy of the fusion trainers (fusion/checkpoints.py)."""

from __future__ import annotations

import logging

import pytest
import torch

from fusion.checkpoints import TrainingFingerprint, flat_params, load_resumable, refusal

BASE = TrainingFingerprint("fmt-v1", data="d1", code="c1", params={"lr": 1e-3, "stage1.lr": 5e-4})


def test_flat_params_reads_dotted_keys_of_a_nested_config():
    config = {"seed": 3, "stage1": {"lr": 5e-4, "epochs": 4}}
    assert flat_params(config, ("seed", "stage1.lr")) == {"seed": 3, "stage1.lr": 5e-4}


@pytest.mark.parametrize(
    ("changed", "reason"),
    [
        (TrainingFingerprint("fmt-v2", "d1", "c1", BASE.params), "another format"),
        (TrainingFingerprint("fmt-v1", "d2", "c1", BASE.params), "training data changed"),
        (TrainingFingerprint("fmt-v1", "d1", "c2", BASE.params), "training code changed"),
        (
            TrainingFingerprint("fmt-v1", "d1", "c1", {**BASE.params, "stage1.lr": 1e-4}),
            "stage1.lr changed from 0.0005 to 0.0001",
        ),
        (  # a parameter the old run did not record is a change too
            TrainingFingerprint("fmt-v1", "d1", "c1", {**BASE.params, "seed": 0}),
            "seed changed from None to 0",
        ),
    ],
)
def test_any_change_but_the_budget_is_refused_with_its_reason(changed, reason):
    assert reason in refusal(BASE.to_dict(), changed)


def test_the_same_fingerprint_continues():
    assert refusal(BASE.to_dict(), BASE) is None
    assert refusal(None, BASE) is not None  # a checkpoint without a fingerprint never does


def _save(path, fingerprint, **extra):
    torch.save({"fingerprint": fingerprint.to_dict(), **extra}, path)


def test_load_resumable_applies_the_trainers_budget_rule(tmp_path, caplog):
    path = tmp_path / "last.pt"
    assert load_resumable(path, BASE, name="t") is None  # no checkpoint yet
    _save(path, BASE, steps=10)
    assert load_resumable(path, BASE, name="t")["steps"] == 10
    assert load_resumable(path, BASE, name="t", budget_check=lambda c: None)["steps"] == 10
    with caplog.at_level(logging.WARNING, logger="fusion.checkpoints"):
        too_many = load_resumable(path, BASE, name="t", budget_check=lambda c: "it holds 10 steps")
    assert too_many is None
    assert (
        "t: " in caplog.text
        and "not continued (it holds 10 steps); training from scratch" in caplog.text
    )


def test_an_unreadable_checkpoint_starts_afresh(tmp_path, caplog):
    path = tmp_path / "last.pt"
    path.write_bytes(b"not a torch file")
    with caplog.at_level(logging.WARNING, logger="fusion.checkpoints"):
        assert load_resumable(path, BASE, name="t") is None
    assert "unreadable" in caplog.text and path.exists()  # never deleted by the check
