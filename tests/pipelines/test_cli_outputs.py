"""Output safety from the user's side: every destructive `--out` fails with the folder untouched.

Each case of issue 16 runs the real command line on temporary folders and compares checksums of
the user's files before and after.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from cli_helpers import error_lines, mmif, tree_digest, write_pairs

from mmif.io import OUTPUT_MARKER


@pytest.fixture
def pairs(tmp_path: Path) -> Path:
    write_pairs(tmp_path, ["a", "b", "mean"])
    return tmp_path


def _refused(status: int, log: str, *needles: str) -> None:
    assert status == 1, log
    errors = error_lines(log)
    assert len(errors) == 1 and "Traceback" not in log, log
    for needle in needles:
        assert needle in errors[0], errors[0]


def test_fuse_refuses_a_folder_it_did_not_write(pairs):
    victim = pairs / "victim"
    victim.mkdir()
    (victim / "IMPORTANT.txt").write_text("the user's notes")
    before = tree_digest(pairs)
    status, log = mmif(
        "fuse", "--method", "max", "--ir", "ir", "--vis", "vis", "--out", "victim", cwd=pairs
    )
    _refused(status, log, "victim", "not written by mmif", "IMPORTANT.txt", "--overwrite")
    assert tree_digest(pairs) == before
    # the user asks for it: replaced, the old contents gone
    status, log = mmif(
        "fuse", "--method", "max", "--ir", "ir", "--vis", "vis", "--out", "victim", "--overwrite",
        cwd=pairs,
    )  # fmt: skip
    assert status == 0, log
    assert sorted(p.name for p in victim.iterdir()) == [OUTPUT_MARKER, "a.png", "b.png", "info.json", "mean.png"]  # fmt: skip


def test_fuse_rewrites_its_own_output_without_overwrite(pairs):
    for _ in range(2):
        status, log = mmif("fuse", "--method", "max", "--ir", "ir", "--vis", "vis", "--out", "fused", cwd=pairs)  # fmt: skip
        assert status == 0, log
    assert (pairs / "fused" / OUTPUT_MARKER).is_file()
    assert not [p for p in pairs.iterdir() if ".tmp-" in p.name or ".old-" in p.name]


@pytest.mark.parametrize(
    ("out", "needle"),
    [
        ("ir", "this is the input ir"),
        ("ir/fused", "lies inside the input ir"),
        (".", "contains the input ir"),
        ("vis/../ir", "this is the input"),
    ],
)
@pytest.mark.parametrize("overwrite", [False, True])
def test_fuse_never_writes_over_into_or_around_an_input(pairs, out, needle, overwrite):
    before = tree_digest(pairs)
    extra = ["--overwrite"] if overwrite else []
    status, log = mmif("fuse", "--method", "max", "--ir", "ir", "--vis", "vis", "--out", out, *extra, cwd=pairs)  # fmt: skip
    _refused(status, log, needle)
    assert tree_digest(pairs) == before


def test_fuse_refuses_a_file_as_output_folder(pairs):
    (pairs / "afile").write_text("a regular file")
    before = tree_digest(pairs)
    for extra in ([], ["--overwrite"]):
        status, log = mmif("fuse", "--method", "max", "--ir", "ir", "--vis", "vis", "--out", "afile", *extra, cwd=pairs)  # fmt: skip
        _refused(status, log, "afile", "not a folder")
    assert tree_digest(pairs) == before


def test_fuse_into_the_current_folder(pairs):
    here = pairs / "here"
    here.mkdir()
    for _ in range(2):  # an empty folder, then the folder mmif wrote
        status, log = mmif("fuse", "--method", "max", "--ir", "../ir", "--vis", "../vis", "--out", ".", cwd=here)  # fmt: skip
        assert status == 0, log
        assert sorted(p.name for p in here.iterdir()) == [OUTPUT_MARKER, "a.png", "b.png", "info.json", "mean.png"]  # fmt: skip
    assert not [p for p in pairs.rglob("*") if ".tmp-" in p.name]
    # a current folder holding the user's files is refused like any other
    for path in here.iterdir():
        path.unlink()
    (here / "notes.txt").write_text("the user's notes")
    before = tree_digest(pairs)
    status, log = mmif("fuse", "--method", "max", "--ir", "../ir", "--vis", "../vis", "--out", ".", cwd=here)  # fmt: skip
    _refused(status, log, "not written by mmif")
    assert tree_digest(pairs) == before


def test_output_folders_get_the_users_permissions(pairs):
    old = os.umask(0o027)
    try:
        status, log = mmif("fuse", "--method", "max", "--ir", "ir", "--vis", "vis", "--out", "fused", cwd=pairs)  # fmt: skip
    finally:
        os.umask(old)
    assert status == 0, log
    assert (pairs / "fused").stat().st_mode & 0o777 == 0o750  # not mkdtemp's 0700


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_stale_temporary_folders_of_killed_runs_are_removed(pairs):
    host = "".join(c for c in socket.gethostname() if c.isalnum())[:40]
    stale = pairs / f".fused.tmp-{host}-{_dead_pid()}-0123abcd"
    stale.mkdir()
    (stale / "half.png").write_bytes(b"partial")
    running = pairs / f".fused.tmp-{host}-{os.getpid()}-4567abcd"  # a live process: kept
    running.mkdir()
    status, log = mmif("fuse", "--method", "max", "--ir", "ir", "--vis", "vis", "--out", "fused", cwd=pairs)  # fmt: skip
    assert status == 0, log
    assert not stale.exists() and "left behind by an interrupted run" in log
    assert running.is_dir()


def test_a_failed_run_leaves_no_temporary_folder_and_the_old_output(pairs):
    status, log = mmif("fuse", "--method", "max", "--ir", "ir", "--vis", "vis", "--out", "fused", cwd=pairs)  # fmt: skip
    assert status == 0, log
    before = tree_digest(pairs)
    (pairs / "vis" / "b.png").write_bytes(b"not a png")
    status, log = mmif("fuse", "--method", "max", "--ir", "ir", "--vis", "vis", "--out", "fused", cwd=pairs)  # fmt: skip
    _refused(status, log, "b.png")
    after = tree_digest(pairs)
    assert {k: v for k, v in after.items() if not k.startswith("vis")} == {
        k: v for k, v in before.items() if not k.startswith("vis")
    }


def _msrs_root(root: Path, stems: dict[str, list[str]], label: str = "0 0.5 0.5 0.2 0.2\n") -> Path:
    """An MSRS-like release: <split>/ir, <split>/vi and a flat det_labels folder."""
    for split, names in stems.items():
        write_pairs(root / split, names, seed=len(split))
        (root / split / "vis").rename(root / split / "vi")
        for stem in names:
            (root / "det_labels").mkdir(parents=True, exist_ok=True)
            (root / "det_labels" / f"{stem}.txt").write_text(label)
    (root / "README.txt").write_text("the user's dataset notes")
    return root


@pytest.mark.parametrize(
    ("out", "needle"),
    [("msrs", "this is the input msrs"), ("msrs/prepared", "lies inside the input"), (".", "contains the input")],
)  # fmt: skip
def test_prepare_never_replaces_the_dataset(tmp_path, out, needle):
    _msrs_root(tmp_path / "msrs", {"train": ["00001D", "00002N"], "test": ["00003D"]})
    before = tree_digest(tmp_path)
    for extra in ([], ["--overwrite"]):
        status, log = mmif(
            "prepare", "--dataset", "msrs", "--root", "msrs", "--det-labels", "msrs/det_labels",
            "--out", out, "--params", "none.yaml", *extra, cwd=tmp_path,
        )  # fmt: skip
        _refused(status, log, needle)
    assert tree_digest(tmp_path) == before


def test_prepare_synthetic_refuses_a_foreign_folder(tmp_path):
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "mine.csv").write_text("1,2\n")
    before = tree_digest(tmp_path)
    status, log = mmif("prepare", "--out", "data", "--params", "none.yaml", cwd=tmp_path)
    _refused(status, log, "data", "not written by mmif", "--overwrite")
    assert tree_digest(tmp_path) == before


def test_report_refuses_an_output_holding_the_results(tmp_path):
    (tmp_path / "results" / "fusion_metrics").mkdir(parents=True)
    (tmp_path / "results" / "fusion_metrics" / "max.json").write_text('{"EN": 1}\n')
    (tmp_path / "params.yaml").write_text("report: {}\n")
    before = tree_digest(tmp_path)
    status, log = mmif(
        "report", "--results", "results", "--out", "results", cwd=tmp_path,
    )  # fmt: skip
    _refused(status, log, "contains the input")
    assert tree_digest(tmp_path) == before


def test_task_stage_refuses_its_input_as_output(tmp_path, tiny_synthetic):
    (tmp_path / "params.yaml").write_text("seeds: [0]\n")
    fused = tmp_path / "fused"
    status, log = mmif("fuse", "--method", "max", "--data", tiny_synthetic, "--out", fused, cwd=tmp_path)  # fmt: skip
    assert status == 0, log
    before = tree_digest(fused)
    for task in ("detect", "segment"):
        status, log = mmif(
            task, "--method", "max", "--data", tiny_synthetic, "--fused", fused, "--out", fused,
            cwd=tmp_path,
        )  # fmt: skip
        _refused(status, log, "this is the input")
    assert tree_digest(fused) == before


@pytest.mark.parametrize("flag", ["--out", "--json"])
def test_metrics_files_never_replace_inputs_or_folders(pairs, flag):
    status, log = mmif("fuse", "--method", "max", "--ir", "ir", "--vis", "vis", "--out", "fused", cwd=pairs)  # fmt: skip
    assert status == 0, log
    before = tree_digest(pairs)
    for target, needle in (("fused", "is a folder"), ("ir/a.png", "inside the input ir"), ("fused/m.csv", "lies inside the input")):  # fmt: skip
        args = {"--out": "m.csv", "--json": "m.json", flag: target}
        status, log = mmif(
            "metrics", "--ir", "ir", "--vis", "vis", "--fused", "fused",
            "--out", args["--out"], "--json", args["--json"], cwd=pairs,
        )  # fmt: skip
        _refused(status, log, needle)
        assert tree_digest(pairs) == before


def test_metrics_of_an_image_named_mean(pairs):
    import pandas as pd

    status, log = mmif("fuse", "--method", "max", "--ir", "ir", "--vis", "vis", "--out", "fused", cwd=pairs)  # fmt: skip
    assert status == 0, log
    status, log = mmif(
        "metrics", "--ir", "ir", "--vis", "vis", "--fused", "fused", "--names", "EN,SSIM",
        "--out", "m.csv", "--json", "m.json", cwd=pairs,
    )  # fmt: skip
    assert status == 0, log
    table = pd.read_csv(pairs / "m.csv", dtype={"name": str})
    assert list(table["name"]) == ["a", "b", "mean"]  # three images, no summary row
    import json

    doc = json.loads((pairs / "m.json").read_text())
    assert doc["n_images"] == 3
    for name in ("EN", "SSIM"):
        assert doc[name] == pytest.approx(float(table[name].mean()), rel=1e-5)  # CSV: 6 digits
        assert doc[name] != pytest.approx(float(table[name].iloc[2]), rel=1e-6)


def test_outputs_written_before_the_marker_are_recognised(pairs):
    from mmif.errors import OutputError
    from mmif.io import check_output_dir

    old = pairs / "fused_v0"  # a fuse output of an earlier version: info.json, no marker
    old.mkdir()
    (old / "a.png").write_bytes(b"x")
    (old / "info.json").write_text('{"method": "max", "params": {}, "n_images": 1}')
    assert check_output_dir(old) == old.resolve()
    status, log = mmif("fuse", "--method", "max", "--ir", "ir", "--vis", "vis", "--out", "fused_v0", cwd=pairs)  # fmt: skip
    assert status == 0, log
    mine = pairs / "mine"  # the user's own info.json is not mistaken for one
    mine.mkdir()
    (mine / "info.json").write_text('{"title": "my notes"}')
    with pytest.raises(OutputError, match="not written by mmif"):
        check_output_dir(mine)
