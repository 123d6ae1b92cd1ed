"""Bad inputs and misuse from the user's side: one clear line for the project's own errors, a
traceback for bugs, labels named by file, line and field, one stem rule for every command."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from cli_helpers import error_lines, mmif, tree_digest, write_pairs

import pipelines.methods
from detection.dataset import DatasetError, build_yolo_dataset
from mmif.labels import read_yolo_file
from mmif.layout import Manifest


@pytest.fixture
def pairs(tmp_path: Path) -> Path:
    write_pairs(tmp_path, ["a", "b"])
    return tmp_path


def _one_line(status: int, log: str, *needles: str) -> str:
    assert status == 1, log
    errors = error_lines(log)
    assert len(errors) == 1 and "Traceback" not in log, log
    for needle in needles:
        assert needle in errors[0], errors[0]
    return errors[0]


# ------------------------------------------------------------------ CLI error policy


def test_a_bug_shows_its_traceback_not_one_line(monkeypatch, caplog):
    def broken(args):
        return {}["missing key"]  # a KeyError from a bug, not from the user's input

    monkeypatch.setattr(pipelines.methods, "run", broken)
    with caplog.at_level(logging.INFO), pytest.raises(KeyError, match="missing key"):
        mmif("methods")
    assert "internal error (KeyError" in caplog.text


def test_environment_failures_are_one_line(monkeypatch):
    def no_space(args):
        raise OSError(28, "No space left on device", "results/x.csv")

    monkeypatch.setattr(pipelines.methods, "run", no_space)
    status, log = mmif("methods")
    _one_line(status, log, "No space left on device", "results/x.csv")


# ------------------------------------------------------------------ no silent misuse


def test_learned_method_without_weights_is_an_error(pairs):
    for method in ("coconet", "densefuse"):
        status, log = mmif("fuse", "--method", method, "--ir", "ir", "--vis", "vis", "--out", "f", cwd=pairs)  # fmt: skip
        _one_line(status, log, f"{method} needs trained weights", "--weights", "--untrained")
    assert not (pairs / "f").exists()
    status, log = mmif(
        "fuse", "--method", "densefuse", "--ir", "ir", "--vis", "vis", "--out", "f", "--untrained",
        cwd=pairs,
    )  # fmt: skip
    assert status == 0, log
    info = json.loads((pairs / "f" / "info.json").read_text())
    assert info["trained"] is False and "untrained" in info["warning"]


@pytest.mark.parametrize(
    ("method", "key", "allowed"),
    [
        ("max", "foo", "it takes no parameters"),
        ("ir", "weight_ir", "it takes no parameters"),
        ("weighted", "weight", "known keys: weight_ir"),
        ("laplacian", "level", "known keys: levels"),
    ],
)
def test_unknown_set_key_is_an_error_naming_the_allowed_keys(pairs, method, key, allowed):
    status, log = mmif(
        "fuse", "--method", method, "--ir", "ir", "--vis", "vis", "--out", "f", "--set", f"{key}=1",
        cwd=pairs,
    )  # fmt: skip
    _one_line(status, log, key, allowed)
    assert not (pairs / "f").exists()


@pytest.mark.skipif(
    torch.cuda.is_available(), reason="checks the message on a machine without CUDA"
)
def test_one_cuda_check_for_every_command(pairs, tiny_synthetic):
    (pairs / "params.yaml").write_text("seeds: [0]\n")
    commands = [
        ("fuse", "--method", "max", "--ir", "ir", "--vis", "vis", "--out", "f", "--device", "cuda"),
        (
            "metrics",
            "--ir",
            "ir",
            "--vis",
            "ir",
            "--fused",
            "vis",
            "--out",
            "m.csv",
            "--device",
            "cuda",
        ),  # fmt: skip
        (
            "detect",
            "--method",
            "max",
            "--data",
            tiny_synthetic,
            "--fused",
            "f",
            "--out",
            "d",
            "--device",
            "cuda",
        ),  # fmt: skip
        (
            "segment",
            "--method",
            "max",
            "--data",
            tiny_synthetic,
            "--fused",
            "f",
            "--out",
            "s",
            "--device",
            "cuda",
        ),  # fmt: skip
    ]
    for argv in commands:
        status, log = mmif(*argv, cwd=pairs)
        line = _one_line(status, log, "'cuda' but CUDA is not available on this machine", "use cpu")
        assert "Traceback" not in line and "driver" not in line.lower()


# ------------------------------------------------------------------ labels


def _msrs(root: Path, stems: dict[str, list[str]], labels: dict[str, str] | None = None) -> Path:
    for split, names in stems.items():
        write_pairs(root / split, names, h=48, w=64, seed=len(split))
        (root / split / "vis").rename(root / split / "vi")
    (root / "det_labels").mkdir(parents=True)
    for names in stems.values():
        for stem in names:
            text = (labels or {}).get(stem, "0 0.5 0.5 0.25 0.25\n2 0.25 0.25 0.1 0.2\n")
            (root / "det_labels" / f"{stem}.txt").write_text(text)
    return root


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("inf 0.5 0.5 0.1 0.1", "field 1 (class id) 'inf' is not a finite number"),
        ("nan 0.5 0.5 0.1 0.1", "field 1 (class id) 'nan' is not a finite number"),
        ("0 nan 0.5 0.1 0.1", "field 2 (cx) 'nan' is not a finite number"),
        ("0 0.5 0.5 0.1 1e999", "field 5 (h) '1e999' is not a finite number"),
        ("0 0.5 x 0.1 0.1", "field 3 (cy) 'x' is not a number"),
    ],
)
def test_bad_label_fields_name_file_line_and_field(tmp_path, capsys, line, message):
    good = "0 0.5 0.5 0.25 0.25\n"
    _msrs(tmp_path / "msrs", {"train": ["00001D", "00002N"], "test": ["00003D"]}, {"00002N": good + line + "\n"})  # fmt: skip
    before = tree_digest(tmp_path)
    argv = ("prepare", "--dataset", "msrs", "--root", "msrs", "--det-labels", "msrs/det_labels", "--params", "none.yaml")  # fmt: skip
    status, log = mmif(*argv, "--out", "prepared", cwd=tmp_path)
    _one_line(status, log, "00002N.txt", "line 2", message)
    assert tree_digest(tmp_path) == before
    capsys.readouterr()
    status, log = mmif(*argv, "--check", cwd=tmp_path)  # --check: the same finding
    assert status == 1 and "00002N.txt: line 2: " + message in capsys.readouterr().out
    # the detection stage's reader gives the same line
    with pytest.raises(DatasetError, match=r"00002N\.txt:2: " + message.replace("(", r"\(").replace(")", r"\)")):  # fmt: skip
        read_yolo_file(tmp_path / "msrs" / "det_labels" / "00002N.txt", 3)


# ------------------------------------------------------------------ stems


STEMS = ["nuit à 5 h", "scène [2]", "café-01", "夜 12"]


def test_any_file_name_goes_through_every_stage(tmp_path, capsys):
    _msrs(tmp_path / "msrs", {"train": STEMS, "test": ["test 1", "tést*2"]})
    argv = ("prepare", "--dataset", "msrs", "--root", "msrs", "--det-labels", "msrs/det_labels", "--params", "none.yaml")  # fmt: skip
    status, _ = mmif(*argv, "--check", cwd=tmp_path)
    assert status == 0 and "0 error(s)" in capsys.readouterr().out
    status, log = mmif(*argv, "--out", "prepared", cwd=tmp_path)
    assert status == 0, log
    prepared = tmp_path / "prepared"
    (tmp_path / "params.yaml").write_text("fusion: {max: {}}\n")
    stems = {s: sorted(p.stem for p in (prepared / s / "ir").iterdir()) for s in Manifest.load(prepared).splits}  # fmt: skip
    assert sorted(sum(stems.values(), [])) == sorted(STEMS + ["test 1", "tést*2"])
    status, log = mmif("fuse", "--method", "max", "--data", "prepared", "--out", "fused", cwd=tmp_path)  # fmt: skip
    assert status == 0, log
    status, log = mmif(
        "metrics", "--data", "prepared", "--split", "train", "--fused", "fused", "--names", "EN",
        "--out", "m.csv", "--json", "m.json", cwd=tmp_path,
    )  # fmt: skip
    assert status == 0, log
    import pandas as pd

    table = pd.read_csv(tmp_path / "m.csv", dtype={"name": str}, keep_default_na=False)
    assert sorted(table["name"]) == sorted(stems["train"])
    # the detector's dataset: ultralytics finds each image's label file by path
    from detection.offline import import_ultralytics

    import_ultralytics()  # as the detect stage does: offline, PIL left alone
    from ultralytics.data.utils import img2label_paths

    ds = build_yolo_dataset(tmp_path / "fused", prepared, tmp_path / "yolo")
    for split, names in ds.stems.items():
        images = [str(ds.image_path(split, stem)) for stem in names]
        for image, label in zip(images, img2label_paths(images), strict=True):
            assert Path(label).is_file(), (image, label)
            assert Path(label).read_text().startswith("0 0.5")
    # DVC tracks and restores such files
    dvc = [str(Path(sys.executable).parent / "dvc")]
    env = {**os.environ, "DVC_NO_ANALYTICS": "1"}
    for cmd in (["git", "init", "-q"], [*dvc, "init", "-q"], [*dvc, "add", "-q", "prepared"]):
        subprocess.run(cmd, cwd=tmp_path, env=env, check=True, capture_output=True)
    victim = prepared / "train" / "ir" / "nuit à 5 h.png"
    digest = tree_digest(victim)
    victim.unlink()
    subprocess.run([*dvc, "checkout", "-q", "prepared"], cwd=tmp_path, env=env, check=True, capture_output=True)  # fmt: skip
    assert tree_digest(victim) == digest
    status = subprocess.run([*dvc, "status", "--json"], cwd=tmp_path, env=env, capture_output=True, text=True)  # fmt: skip
    assert json.loads(status.stdout[status.stdout.index("{") :]) == {}, status.stdout


@pytest.mark.parametrize("bad", ["tab\there", "line\nbreak"])
def test_names_no_stage_can_hold_are_refused_everywhere_with_the_path(tmp_path, capsys, bad):
    _msrs(tmp_path / "msrs", {"train": ["00001D", bad], "test": ["00003D"]})
    argv = ("prepare", "--dataset", "msrs", "--root", "msrs", "--det-labels", "msrs/det_labels", "--params", "none.yaml")  # fmt: skip
    status, _ = mmif(*argv, "--check", cwd=tmp_path)
    out = capsys.readouterr().out
    assert status == 1 and repr(f"{bad}.png") in out and "control character" in out
    status, log = mmif(*argv, "--out", "prepared", cwd=tmp_path)
    _one_line(status, log, repr(f"{bad}.png"), "control character")
    assert not (tmp_path / "prepared").exists()
    ir, vis = tmp_path / "msrs" / "train" / "ir", tmp_path / "msrs" / "train" / "vi"
    status, log = mmif("fuse", "--method", "max", "--ir", ir, "--vis", vis, "--out", "f", cwd=tmp_path)  # fmt: skip
    _one_line(status, log, repr(f"{bad}.png"), "control character")
    status, log = mmif("metrics", "--ir", ir, "--vis", vis, "--fused", vis, "--out", "m.csv", cwd=tmp_path)  # fmt: skip
    _one_line(status, log, repr(f"{bad}.png"), "control character")


# ------------------------------------------------------------------ fused splits


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ("fusion: {max: {}}\n", ["test"]),
        ("fusion: {max: {}}\nmetrics: {split: train}\n", ["test", "train"]),
        ("fusion: {max: {}}\ndetect: {protocol: finetune}\n", ["test", "train"]),
        ("fusion: {max: {}}\nsegment: {protocol: retrain}\n", ["test", "train"]),
    ],
)
def test_fuse_splits_study_fuses_only_what_the_study_reads(tmp_path, params, expected):
    _msrs(tmp_path / "msrs", {"train": ["00001D", "00002N"], "test": ["00003D"]})
    argv = ("prepare", "--dataset", "msrs", "--root", "msrs", "--det-labels", "msrs/det_labels", "--params", "none.yaml", "--out", "prepared")  # fmt: skip
    status, log = mmif(*argv, cwd=tmp_path)
    assert status == 0, log
    (tmp_path / "params.yaml").write_text(params)
    status, log = mmif("fuse", "--method", "max", "--data", "prepared", "--out", "fused", "--splits", "study", cwd=tmp_path)  # fmt: skip
    assert status == 0, log
    assert sorted(p.name for p in (tmp_path / "fused").iterdir() if p.is_dir()) == expected
    assert json.loads((tmp_path / "fused" / "info.json").read_text())["n_images"] == (
        1 if expected == ["test"] else 3
    )
    # without --splits (the default, all) every split is fused whatever the protocols
    status, log = mmif("fuse", "--method", "max", "--data", "prepared", "--out", "all", cwd=tmp_path)  # fmt: skip
    assert status == 0, log
    assert sorted(p.name for p in (tmp_path / "all").iterdir() if p.is_dir()) == ["test", "train"]


def test_fuse_splits_study_without_a_test_split_says_what_to_do(tmp_path):
    _msrs(tmp_path / "msrs", {"train": ["00001D", "00002N"]})
    argv = ("prepare", "--dataset", "msrs", "--root", "msrs", "--det-labels", "msrs/det_labels", "--params", "none.yaml", "--out", "prepared")  # fmt: skip
    status, log = mmif(*argv, cwd=tmp_path)
    assert status == 0, log
    (tmp_path / "params.yaml").write_text("fusion: {max: {}}\n")
    status, log = mmif("fuse", "--method", "max", "--data", "prepared", "--out", "fused", "--splits", "study", cwd=tmp_path)  # fmt: skip
    assert status != 0 and "split(s) the study reads (test)" in log and "--splits all" in log
    assert not (tmp_path / "fused").exists()
