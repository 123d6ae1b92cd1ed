"""`mmif external`: register a results root of 40 methods, register it again (no change),
remove one; bad roots fail with the folder and the fix and write nothing; the fuse stage copies
a registered method's images.

The 40 methods are the built-in `weighted` fusion at 40 weights (the scale case of the issue),
fused in this process on a tiny prepared dataset: the test checks the registration and the
stages dvc.yaml makes of it, not the pipeline's run time (benchmarks/bench_external_scale.py).
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

from mmif.external import load_registry
from mmif.io import OUTPUT_MARKER, read_image, to_tensor, to_uint8, write_image
from mmif.layout import SPLITS, list_pairs
from tests.pipelines.cli_helpers import REPO, error_lines, mmif, tree_digest

N_METHODS = 40


def _weights() -> list[float]:
    return [round(i / (N_METHODS - 1), 4) for i in range(N_METHODS)]


def fuse_into(folder: Path, data: Path, weight_ir: float, splits=("test",), ext=".png") -> None:
    """folder/<stem><ext> (or folder/<split>/<stem><ext>) fused by `weighted` in this process."""
    from fusion.registry import create_method

    method = create_method("weighted", {"weight_ir": weight_ir})
    for split in splits:
        out = folder / split if len(splits) > 1 else folder
        for pair in list_pairs(data, split):
            ir, vis = to_tensor(read_image(pair.ir)), to_tensor(read_image(pair.vis))
            write_image(out / f"{pair.stem}{ext}", to_uint8(method.fuse(ir, vis)))


@pytest.fixture()
def workspace(tmp_path: Path, tiny_synthetic: Path) -> Path:
    """A project folder: params.yaml, dvc.yaml and external.yaml of the repository, and the
    tiny prepared dataset as data/prepared."""
    ws = tmp_path / "project"
    ws.mkdir()
    for name in ("params.yaml", "dvc.yaml", "external.yaml"):
        shutil.copy2(REPO / name, ws / name)
    shutil.copytree(tiny_synthetic, ws / "data" / "prepared")
    return ws


@pytest.fixture()
def big_root(workspace: Path) -> Path:
    """40 method folders: 37 flat with the test images, 3 with train/ val/ test/ subfolders,
    JPEG for some; folder names with a dot and a space, as released folders have."""
    root = workspace.parent / "results_zoo"
    data = workspace / "data" / "prepared"
    for i, w in enumerate(_weights()):
        name = f"weighted w{w:.4f}" if i % 10 == 3 else f"weighted_{w:.4f}"
        splits = SPLITS if i < 3 else ("test",)
        fuse_into(root / name, data, w, splits, ext=".jpg" if i % 7 == 5 else ".png")
    return root


def _table_rows(out: str) -> dict[str, dict[str, str]]:
    """method -> column -> cell of the printed table (columns cut at the dashes' spans)."""
    import re

    lines = out.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("method"))
    spans = [m.span() for m in re.finditer(r"-+", lines[start + 1])]
    spans[-1] = (spans[-1][0], None)
    header = [lines[start][a:b].strip() for a, b in spans]
    rows = {}
    for line in lines[start + 2 :]:
        if not line.strip():
            break
        cells = dict(zip(header, (line[a:b].strip() for a, b in spans), strict=True))
        rows[cells["method"]] = cells
    return rows


def test_register_40_methods_twice_and_remove_one(workspace, big_root, capsys):
    source = tree_digest(big_root)  # the user's results: never modified
    status, log = mmif("external", "add", "--root", big_root, cwd=workspace)
    out = capsys.readouterr().out
    assert status == 0, log
    rows = _table_rows(out)
    assert len(rows) == N_METHODS, out
    registry = load_registry(workspace / "external.yaml")
    assert len(registry) == N_METHODS and set(registry) == set(rows)
    # names are safe for stage names and paths, and say where they came from
    for name, entry in registry.items():
        assert all(c.isalnum() or c in "_-" for c in name), name
        folder = workspace / entry["dir"]
        assert folder.is_dir() and folder.parent.name == "results_zoo", entry
    assert "weighted_0_0000" in registry and "weighted_w0_0769" in registry  # "weighted w0.0769"
    assert "named 'weighted_w0_0769' after its folder 'weighted w0.0769'" in out
    # coverage per split: the three split-folder methods cover every split, the others test only
    n_train = len(list_pairs(workspace / "data" / "prepared", "train"))
    n_test = len(list_pairs(workspace / "data" / "prepared", "test"))
    full = [r for r in rows.values() if r["train"] == f"{n_train}/{n_train}"]
    assert len(full) == 3
    assert all(r["test"] == f"{n_test}/{n_test}" for r in rows.values())
    assert all(r["status"] == "new" and r["colour"] == "colour" for r in rows.values())
    assert rows["weighted_w0_0769"]["folder"] == "weighted w0.0769"

    # the stages dvc.yaml makes of it: four per registered method, none for the others
    stages = _dvc_stage_names(workspace)
    for kind in ("fuse_external", "fusion_metrics_external", "detect_external", "segment_external"):
        assert sum(s.startswith(f"{kind}@") for s in stages) == N_METHODS, kind
    assert "fuse_external@weighted_0_0000" in stages and "train@ir" in stages

    before = (workspace / "external.yaml").read_bytes()
    mtime = (workspace / "external.yaml").stat().st_mtime_ns
    status, log = mmif("external", "add", "--root", big_root, cwd=workspace)
    out = capsys.readouterr().out
    assert status == 0, log
    assert f"0 new, 0 updated, {N_METHODS} unchanged" in out and "the file is unchanged" in out
    assert (workspace / "external.yaml").read_bytes() == before
    assert (workspace / "external.yaml").stat().st_mtime_ns == mtime  # not even rewritten

    # remove one: its registration and its pipeline outputs go, nothing else
    gone = "weighted_0_5128"
    for rel in (f"data/fused/{gone}/test/x.png", f"results/fusion_metrics/{gone}.json",
                f"results/detect/{gone}/seed_0/metrics.json", "results/fusion_metrics/vis.json"):  # fmt: skip
        (workspace / rel).parent.mkdir(parents=True, exist_ok=True)
        (workspace / rel).write_text("{}")
    for rel in (
        f"data/fused/{gone}",
        f"results/detect/{gone}",
    ):  # as the pipeline's stages mark them
        (workspace / rel / OUTPUT_MARKER).write_text("")
    # a folder of the user's at an output path, not written by mmif: never deleted
    mine = workspace / "results" / "segment" / gone / "my_notes.txt"
    mine.parent.mkdir(parents=True, exist_ok=True)
    mine.write_text("mine")
    status, log = mmif("external", "remove", gone, cwd=workspace)
    assert mine.read_text() == "mine" and "kept" in log and "mmif did not write it" in log
    assert status == 0, log
    registry = load_registry(workspace / "external.yaml")
    assert len(registry) == N_METHODS - 1 and gone not in registry
    assert not (workspace / "data/fused" / gone).exists()
    assert not (workspace / f"results/fusion_metrics/{gone}.json").exists()
    assert not (workspace / f"results/detect/{gone}").exists()
    assert (workspace / "results/fusion_metrics/vis.json").exists()
    assert f"fuse_external@{gone}" not in _dvc_stage_names(workspace)
    # ... and registering the root again brings it back unchanged otherwise
    status, _ = mmif("external", "add", "--root", big_root, cwd=workspace)
    assert status == 0 and "1 new, 0 updated, 39 unchanged" in capsys.readouterr().out
    assert (workspace / "external.yaml").read_bytes() == before
    assert tree_digest(big_root) == source


def _dvc_stage_names(workspace: Path) -> list[str]:
    """`dvc stage list --name-only` in the project folder (a git and DVC repository)."""
    env_bin = str(Path(sys.executable).parent)
    if not (workspace / ".dvc").is_dir():
        subprocess.run(["git", "init", "-q"], cwd=workspace, check=True)
        subprocess.run([f"{env_bin}/dvc", "init", "-q"], cwd=workspace, check=True)
    proc = subprocess.run(
        [f"{env_bin}/dvc", "stage", "list", "--name-only"],
        cwd=workspace,
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.split()


def _no_registration(workspace: Path, before: dict[str, str]) -> None:
    assert tree_digest(workspace) == before  # external.yaml untouched, nothing else written


def _add_fails(workspace: Path, root: Path, *extra: str) -> str:
    before = tree_digest(workspace)
    status, log = mmif("external", "add", "--root", root, *extra, cwd=workspace)
    assert status == 1, log
    _no_registration(workspace, before)
    errors = error_lines(log)
    assert len(errors) == 1, log
    return errors[0]


def test_bad_roots_name_the_folder_and_the_fix_and_write_nothing(workspace, capsys):
    data = workspace / "data" / "prepared"
    roots = workspace.parent / "roots"

    empty = roots / "empty"
    empty.mkdir(parents=True)
    err = _add_fails(workspace, empty)
    assert f"{empty}: empty" in err and "expected ROOT/<Method>/<stem>.png" in err

    sizes = roots / "sizes" / "TarDAL"
    fuse_into(sizes, data, 0.5)
    stem = list_pairs(data, "test")[1].stem
    arr = read_image(sizes / f"{stem}.png")
    write_image(sizes / f"{stem}.png", arr[:-4])  # 4 rows cropped
    err = _add_fails(workspace, roots / "sizes")
    assert f"{sizes / stem}.png is 64x44 but the pair '{stem}' is 64x48" in err
    assert "re-export the fused images at the size of their source pairs" in err

    names = roots / "names" / "U2Fusion"
    for i in range(3):
        write_image(names / f"fused_{i}.png", np.zeros((48, 64), np.uint8))
    err = _add_fails(workspace, roots / "names")
    assert f"{names}: none of its 3 images is named like a prepared pair" in err
    assert "name each fused image after its source pair's stem" in err

    a_file = roots / "results.txt"
    a_file.write_text("not a folder")
    err = _add_fails(workspace, a_file)
    assert f"{a_file}: a file where a folder was expected" in err
    archive = roots / "zoo" / "DenseFuse.zip"
    archive.parent.mkdir()
    archive.write_bytes(b"PK")
    fuse_into(roots / "zoo" / "GTF", data, 0.3)
    err = _add_fails(workspace, roots / "zoo")
    assert f"{archive}: an archive where a method folder was expected; unpack it" in err
    assert "register the 1 usable ones with --skip-bad" in err
    split_file = roots / "splitfile" / "RFN"
    split_file.mkdir(parents=True)
    (split_file / "test").write_text("x")
    fuse_into(split_file / "val", data, 0.3, ("val",))
    err = _add_fails(workspace, roots / "splitfile")
    assert f"{split_file / 'test'}: a file where the folder of the test split's images" in err

    clash = roots / "clash" / "Max"
    fuse_into(clash, data, 1.0)
    err = _add_fails(workspace, roots / "clash")
    assert f"{clash}: its name 'Max' clashes with the built-in method 'max'" in err
    assert "--name-prefix" in err
    # the fix works
    status, log = mmif("external", "add", "--root", roots / "clash", "--name-prefix", "pub_",
                       cwd=workspace)  # fmt: skip
    assert status == 0, log
    assert list(load_registry(workspace / "external.yaml")) == ["pub_Max"]

    partial = roots / "partial" / "SwinFusion"
    fuse_into(partial, data, 0.4)
    (partial / f"{stem}.png").unlink()
    err = _add_fails(workspace, roots / "partial")
    n = len(list_pairs(data, "test"))
    assert f"{partial}: covers {n - 1}/{n} test pairs (no image for e.g. '{stem}')" in err
    capsys.readouterr()


def test_layouts_dataset_folders_single_method_and_splits(workspace, capsys):
    data = workspace / "data" / "prepared"
    zoo = workspace.parent / "IVIF_ZOO"
    fuse_into(zoo / "synthetic" / "A", data, 0.2)
    fuse_into(zoo / "M3FD" / "A", data, 0.2)  # another dataset's folder: not looked at
    status, log = mmif("external", "add", "--root", zoo, "--check", cwd=workspace)
    assert status == 0, log
    out = capsys.readouterr().out
    assert "A" in _table_rows(out) and "nothing written" in out
    assert not load_registry(workspace / "external.yaml")
    zoo2 = workspace.parent / "zoo2"
    fuse_into(zoo2 / "MSRS" / "A", data, 0.2)
    fuse_into(zoo2 / "M3FD" / "A", data, 0.2)
    err = _add_fails(workspace, zoo2)
    assert "holds one folder per dataset (M3FD, MSRS)" in err and "--dataset NAME" in err
    # a relative root stays relative in external.yaml (relative to the project folder)
    status, log = mmif("external", "add", "--root", "../zoo2", "--dataset", "msrs", cwd=workspace)
    assert status == 0, log
    assert load_registry(workspace / "external.yaml")["A"]["dir"] == "../zoo2/MSRS/A"
    capsys.readouterr()

    # one method's own folder as the root, with split subfolders
    single = workspace.parent / "published" / "SeAFusion"
    fuse_into(single, data, 0.6, SPLITS)
    status, log = mmif("external", "add", "--root", "../published/SeAFusion", cwd=workspace)
    assert status == 0, log
    rows = _table_rows(capsys.readouterr().out)
    n = {s: len(list_pairs(data, s)) for s in SPLITS}
    assert [rows["SeAFusion"][s] for s in SPLITS] == [f"{n[s]}/{n[s]}" for s in SPLITS]
    # the same folder under another name, or another folder under the same name: refused
    err = _add_fails(workspace, single, "--name-prefix", "x_")
    assert "already registered as 'SeAFusion'" in err and "mmif external remove" in err
    other = workspace.parent / "other" / "SeAFusion"
    fuse_into(other, data, 0.6)
    err = _add_fails(workspace, other)
    assert "'SeAFusion' is already registered from ../published/SeAFusion" in err


def test_fuse_stage_copies_a_registered_method(workspace, capsys):
    data = workspace / "data" / "prepared"
    root = workspace.parent / "pub"
    fuse_into(root / "Blend", data, 0.7, ("train", "test"))
    status, log = mmif("external", "add", "--root", root, cwd=workspace)
    assert status == 0, log
    assert "0/2" in capsys.readouterr().out  # val: not covered
    out = workspace / "data" / "fused" / "Blend"
    status, log = mmif("fuse", "--method", "external:Blend", "--external", "external.yaml",
                       "--data", "data/prepared", "--out", "data/fused/Blend", cwd=workspace)  # fmt: skip
    assert status == 0, log
    assert sorted(p.name for p in out.iterdir() if p.is_dir()) == ["test", "train"]
    for split in ("train", "test"):
        for pair in list_pairs(data, split):
            np.testing.assert_array_equal(
                read_image(out / split / f"{pair.stem}.png"),
                read_image(root / "Blend" / split / f"{pair.stem}.png"),
            )
    # the folder changed after registration: the stage refuses before writing anything
    pair = list_pairs(data, "test")[0]
    (root / "Blend" / "test" / f"{pair.stem}.png").unlink()
    before = tree_digest(out)
    status, log = mmif("fuse", "--method", "external:Blend", "--external", "external.yaml",
                       "--data", "data/prepared", "--out", "data/fused/Blend", cwd=workspace)  # fmt: skip
    assert status == 1 and f"no image for e.g. '{pair.stem}'" in error_lines(log)[0]
    assert tree_digest(out) == before


def test_registration_file_problems_are_one_line(workspace):
    (workspace / "external.yaml").write_text("external_methods: [a]\nexternal: {}\n")
    status, log = mmif("external", "list", cwd=workspace)
    assert status == 1
    assert "external.yaml: expected `external_methods: [NAME, ...]`" in error_lines(log)[0]
    status, log = mmif("external", "remove", "zz", cwd=workspace)
    assert status == 1
    yaml.safe_dump(
        {"external_methods": [], "external": {}}, (workspace / "external.yaml").open("w")
    )
    status, log = mmif("external", "remove", "zz", cwd=workspace)
    assert status == 1 and "'zz' is not registered (registered: none)" in error_lines(log)[0]
