"""Seeds of one method: how many run at once, the worker failure path, and the seed summary."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest

from mmif.cli import build_parser
from mmif.config import params_from_dict
from pipelines.seed_runs import JobPlan, plan_jobs, run_in_workers
from pipelines.seed_summary import summarise_seeds
from pipelines.tasks import task_seeds


@pytest.mark.parametrize(
    ("jobs", "n_seeds", "on_cuda", "cpus", "expected"),
    [
        ("auto", 3, False, 2, JobPlan(3, 1)),  # every seed at once, one thread each
        ("auto", 3, False, 8, JobPlan(3, 2)),  # cores shared out
        ("auto", 2, False, 2, JobPlan(2, 1)),
        ("auto", 3, True, 8, JobPlan(1, 8)),  # one GPU: one seed after another
        (2, 3, False, 2, JobPlan(2, 1)),
        (5, 3, False, 16, JobPlan(3, 5)),  # never more processes than seeds
        (1, 3, False, 2, JobPlan(1, 2)),
        ("auto", 1, False, 2, JobPlan(1, 2)),
    ],
)
def test_plan_jobs(jobs, n_seeds, on_cuda, cpus, expected, monkeypatch):
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    plan = plan_jobs(jobs, n_seeds, on_cuda, cpus=cpus)
    assert plan == expected
    assert plan.parallel == (expected.processes > 1)


def test_no_workers_under_torchrun(monkeypatch):
    monkeypatch.setenv("WORLD_SIZE", "2")
    assert not plan_jobs("auto", 3, False, cpus=8).parallel


def _parse(*argv: str) -> argparse.Namespace:
    return build_parser().parse_args(
        ["detect", "--method", "m", "--fused", "f", "--out", "o", *argv]
    )


def test_seeds_from_arguments_or_params():
    params = params_from_dict({"seeds": [2, 0, 2]})
    assert task_seeds(_parse(), params) == [2, 0]
    assert task_seeds(_parse("--seeds", "5", "6"), params) == [5, 6]
    assert task_seeds(_parse("--seed", "7"), params) == [7]
    with pytest.raises(ValueError, match="seeds"):
        task_seeds(_parse(), params_from_dict({}))
    with pytest.raises(SystemExit):
        _parse("--seed", "1", "--seeds", "2")


@pytest.mark.parametrize("bad", ["0", "-1", "many"])
def test_bad_jobs_option_is_refused(bad, capsys):
    with pytest.raises(SystemExit):
        _parse("--jobs", bad)
    assert "--jobs" in capsys.readouterr().err


def test_bad_jobs_param_names_the_key():
    from detection.config import DetectConfig
    from segmentation.config import SegmentConfig

    with pytest.raises(ValueError, match="jobs"):
        DetectConfig(jobs=0).validate()
    with pytest.raises(ValueError, match="jobs"):
        SegmentConfig(encoder="mobilenet_v2", jobs="all").validate()


def test_failed_worker_names_seed_and_log(tmp_path):
    # the workers fail at once: the prepared dataset does not exist
    args = _parse("--data", str(tmp_path / "missing"), "--params", str(tmp_path / "p.yaml"))
    args.out = tmp_path / "out"
    (tmp_path / "p.yaml").write_text("seeds: [0, 1]\n")
    with pytest.raises(RuntimeError, match=r"seed [01] failed .*seed_[01]\.log"):
        run_in_workers("detect", args, [0, 1], JobPlan(2, 1))
    logs = sorted(p.name for p in (tmp_path / "out" / "logs").iterdir())
    assert logs and set(logs) <= {"seed_0.log", "seed_1.log"}


def _write_seed(out: Path, seed: int, metrics: dict, curves: str | None = None) -> None:
    d = out / f"seed_{seed}"
    d.mkdir(parents=True)
    (d / "metrics.json").write_text(json.dumps(metrics))
    if curves is not None:
        (d / "curves.csv").write_text(curves)


def test_summary_means_stds_classes_and_curves(tmp_path):
    out = tmp_path / "detect" / "m"
    for seed, (m50, person) in {0: (0.2, 0.5), 1: (0.4, 0.7), 2: (0.6, 0.0)}.items():
        _write_seed(
            out,
            seed,
            {
                "mAP50": m50,
                "mAP50_95": m50 / 2,
                "precision": 0.5,
                "recall": 0.5,
                "per_class": {"person": {"AP50": person}},
            },
            f"epoch,mAP50\n1,{m50 / 2}\n2,{m50}\n",
        )
    summary, curves = tmp_path / "s.json", tmp_path / "c.csv"
    doc = summarise_seeds("detect", "m", out, [0, 1, 2], summary, curves)
    assert json.loads(summary.read_text()) == doc
    assert doc["mAP50"] == pytest.approx(0.4)
    assert doc["mAP50_std"] == pytest.approx(0.2)  # sample std of 0.2, 0.4, 0.6
    assert doc["per_class_AP50"]["person"] == pytest.approx(0.4)
    assert doc["per_seed"]["1"]["mAP50"] == 0.4
    lines = curves.read_text().splitlines()
    assert lines[0] == "epoch,mAP50"
    assert [float(x) for x in lines[2].split(",")] == pytest.approx([2, 0.4])


def test_summary_of_one_seed_has_no_std_and_skipped_runs_say_why(tmp_path):
    out = tmp_path / "segment" / "m"
    _write_seed(out, 0, {"mIoU": 0.3, "pixel_accuracy": 0.9, "per_class": {}})
    doc = summarise_seeds("segment", "m", out, [0], tmp_path / "s.json", None)
    assert doc["mIoU"] == 0.3 and doc["mIoU_std"] is None
    skipped = tmp_path / "segment" / "k"
    _write_seed(skipped, 0, {"skipped": True, "reason": "no masks"})
    doc = summarise_seeds("segment", "k", skipped, [0], tmp_path / "k.json", tmp_path / "k.csv")
    assert doc["skipped"] and doc["reason"] == "no masks"
    assert (tmp_path / "k.csv").read_text() == "epoch\n"
