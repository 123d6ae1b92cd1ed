"""End-to-end: `dvc repro` through every stage on a tiny profile, in a copy of the repository.

Checks the whole chain runs offline under each task protocol (frozen, the default; finetune and
retrain as `dvc exp run` experiments), `dvc metrics show` lists every method's fusion metrics,
mAP50 and mIoU with the protocol, every seed of every method is scored (the shared models' two
seeds trained in parallel worker processes, as on any CPU), a second `dvc repro` does nothing,
changing one method's parameter makes only that method's stages (and the report) stale, an
external method with test images only is scored by the shared models, and a results root
registered with `mmif external add` makes only its methods' stages and the report stale.
"""

from __future__ import annotations

import csv
import io
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.e2e

TINY = {
    "dataset": {"name": "synthetic"},
    "synthetic": {"seed": 0, "width": 96, "height": 64, "n_train": 8, "n_val": 4, "n_test": 4},
    "methods": ["ir", "vis", "weighted", "coconet"],
    "seeds": [0, 1],
    "detect": {
        "base": {"epochs": 1, "imgsz": 96, "batch": 4, "nbs": 4},
        "finetune": {"epochs": 1},
        "retrain": {"epochs": 1, "imgsz": 96, "batch": 4, "nbs": 4},
    },
    "segment": {
        "base": {"epochs": 1, "batch_size": 4},
        "finetune": {"epochs": 1},
        "retrain": {"epochs": 1, "batch_size": 4},
    },
    "report": {"bootstrap_samples": 50, "n_grid_images": 2},
}


def _tiny_params() -> dict:
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    params.update({k: v for k, v in TINY.items() if k not in ("detect", "segment", "report")})
    for key in ("detect", "segment", "report"):
        section = dict(params.get(key) or {})
        for sub, values in TINY[key].items():
            section[sub] = {**section[sub], **values} if isinstance(values, dict) else values
        params[key] = section
    coconet = params["fusion"]["coconet"]
    coconet.update(
        {
            "stage1": {"epochs": 1, "patches_per_step": 4, "lr": 1e-4},
            "stage2": {"epochs": 1, "patches_per_step": 4, "lr": 1e-5},
            "patches_per_image": 2,
            "bn_recalibration": 60,
        }
    )
    return params


def _cuda_available() -> bool:
    import torch

    return torch.cuda.is_available()


def _run(cmd: list[str], cwd: Path) -> str:
    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env.update(
        DVC_NO_ANALYTICS="1",
        HF_HUB_OFFLINE="1",
        YOLO_OFFLINE="1",
        YOLO_CONFIG_DIR=str(cwd / ".cache" / "ultralytics"),
    )
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        raise AssertionError(
            f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stdout[-4000:]}\n{proc.stderr[-6000:]}"
        )
    return proc.stdout + proc.stderr


def copy_tracked_files(dest: Path) -> None:
    """Copy the repository's tracked and untracked-but-not-ignored files into `dest` (what a
    clone of the working tree holds; no .venv, results or caches)."""
    files = subprocess.run(
        ["git", "ls-files", "-co", "--exclude-standard"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    for f in files:
        if (REPO / f).is_file():
            (dest / f).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / f, dest / f)


@pytest.fixture(scope="module")
def workspace(tmp_path_factory) -> Path:
    """A git clone-like copy of the tracked files with the tiny params, after one `dvc repro`."""
    root = tmp_path_factory.mktemp("e2e") / "repo"
    copy_tracked_files(root)
    (root / "params.yaml").write_text(yaml.safe_dump(_tiny_params(), sort_keys=False))
    _run(["git", "init", "-q"], root)
    _run(["git", "-c", "user.email=t@t", "-c", "user.name=t", "add", "-A"], root)
    _run(["git", "-c", "user.email=t@t", "-c", "user.name=t", "commit", "-qm", "tiny"], root)
    _run(["dvc", "repro"], root)
    return root


def test_every_stage_wrote_its_outputs(workspace):
    for method in TINY["methods"]:
        fm = json.loads((workspace / "results" / "fusion_metrics" / f"{method}.json").read_text())
        assert {"EN", "SD", "SF", "MI", "SSIM"} <= set(fm)
        for task, score in (("detect", "mAP50"), ("segment", "mIoU")):
            summary = json.loads(
                (workspace / "results" / "scores" / task / f"{method}.json").read_text()
            )
            assert summary["seeds"] == TINY["seeds"]
            assert summary["protocol"] == "frozen"
            per_seed = [summary["per_seed"][str(s)][score] for s in TINY["seeds"]]
            assert summary[score] == pytest.approx(sum(per_seed) / len(per_seed))
    for task in ("detect", "segment"):
        base = workspace / "models" / f"{task}_base"
        assert json.loads((base / "base.json").read_text())["seeds"] == TINY["seeds"]
        for seed in TINY["seeds"]:
            assert (base / f"seed_{seed}" / "model.pt").is_file()
            # on the CPU both seeds of the shared model trained in worker processes
            if not _cuda_available():
                assert (base / "logs" / f"seed_{seed}.log").exists()
        for seed in TINY["seeds"]:  # every method x seed
            det = json.loads(
                (
                    workspace / "results" / "detect" / method / f"seed_{seed}" / "metrics.json"
                ).read_text()
            )
            seg = json.loads(
                (
                    workspace / "results" / "segment" / method / f"seed_{seed}" / "metrics.json"
                ).read_text()
            )
            assert 0.0 <= det["mAP50"] <= 1.0 and det["seed"] == seed
            assert 0.0 <= seg["mIoU"] <= 1.0 and seg["seed"] == seed
            assert det["protocol"] == seg["protocol"] == "frozen"
            # trained and scored on this machine, and the metrics say so
            assert det["base_machine"] == det["machine"] == seg["base_machine"] == seg["machine"]
    assert (workspace / "models" / "coconet" / "coconet.pt").exists()
    report = workspace / "results" / "report"
    assert (report / "report.html").exists() and (report / "report.md").exists()
    assert list(report.glob("**/*.png"))
    # findings first, and the results card next to the report
    md = (report / "report.md").read_text()
    assert md.index("## Findings") < md.index("## About this run")
    # the run facts name how the shared models were trained, augmentation included
    from mmif.augment import Appearance

    params = yaml.safe_load((workspace / "params.yaml").read_text())
    for task, title in (("detect", "Object detection"), ("segment", "Semantic segmentation")):
        cfg = Appearance.from_mapping(params[task]["base"].get("appearance"))
        assert (
            f"photometric augmentation: {Appearance.describe(cfg.facts())} (trained once" in md
        ), title
        assert f"{title} machine: models trained on {det['machine']}." in md
    assert (report / "card.png").stat().st_size > 10_000 and (report / "card.svg").is_file()


def test_metrics_show_lists_every_method(workspace):
    out = _run(["dvc", "metrics", "show", "--json"], workspace)
    text = json.dumps(json.loads(out[out.index("{") :]))
    for method in TINY["methods"]:
        assert f"results/fusion_metrics/{method}.json" in text
        assert f"results/scores/detect/{method}.json" in text
        assert f"results/scores/segment/{method}.json" in text
    assert "mAP50" in text and "mIoU" in text and '"protocol": "frozen"' in text


def test_other_protocols_run_as_an_experiment(workspace):
    # one experiment covers both other protocols: finetune for detection, retrain for
    # segmentation (each task's stages read only their own section)
    protocols = {"detect": "finetune", "segment": "retrain"}
    _run(
        [
            "dvc", "exp", "run", "--temp", "-n", "tiny-protocols",
            "-S", "detect.protocol=finetune", "-S", "segment.protocol=retrain",
        ],
        workspace,
    )  # fmt: skip
    table = _run(["dvc", "exp", "show", "--csv"], workspace)
    rows = list(csv.DictReader(io.StringIO(table[table.index("Experiment") :])))
    row = next(r for r in rows if r["Experiment"] == "tiny-protocols")
    for task, score in (("detect", "mAP50"), ("segment", "mIoU")):
        cols = [c for c in row if c.endswith(f":{score}") and f"scores/{task}/" in c]
        assert cols and all(row[c] not in ("", "!") for c in cols), {c: row[c] for c in cols}
        cols = [c for c in row if c.endswith(":protocol") and f"scores/{task}/" in c]
        assert cols and all(row[c] == protocols[task] for c in cols), {c: row[c] for c in cols}


def test_experiment_keeps_metrics_and_plots(workspace):
    # `dvc exp run` commits dvc.lock to an experiment ref; metrics and plots live in the DVC
    # cache (results/ is not in git), so `dvc exp show` and `dvc plots diff` can read them back
    # --temp: in a temporary copy, as queued experiments run; the workspace stays as it is
    _run(
        ["dvc", "exp", "run", "--temp", "-n", "boot20", "-S", "report.bootstrap_samples=20"],
        workspace,
    )
    table = _run(["dvc", "exp", "show", "--csv"], workspace)
    rows = list(csv.DictReader(io.StringIO(table[table.index("Experiment") :])))
    row = next(r for r in rows if r["Experiment"] == "boot20")
    map_cols = [c for c in row if c.endswith("mAP50") and "detect" in c]
    assert map_cols, list(row)
    assert all(row[c] not in ("", "!") for c in map_cols), {c: row[c] for c in map_cols}
    out = _run(["dvc", "plots", "diff", "boot20", "--json"], workspace)
    doc = json.JSONDecoder().raw_decode(out[out.index("{") :])[0]
    assert not [e for e in doc.get("errors", []) if "curves.csv" in e.get("name", "")]
    assert any("curves.csv" in k for k in doc["data"])


def test_editing_a_metric_kernel_reruns_only_the_metric_stages(workspace):
    """dvc.yaml's deps follow the imports: the fusion metrics are no dependency of training,
    fusion or the task stages, so editing a kernel leaves them up to date."""
    kernel = workspace / "metrics" / "fmi.py"
    original = kernel.read_bytes()
    try:
        kernel.write_bytes(original + b"\n# edited by the test\n")
        status = _run(["dvc", "status", "--json"], workspace)
        stale = set(json.loads(status[status.index("{") :]))
    finally:
        kernel.write_bytes(original)
    assert stale, "editing metrics/fmi.py should make the fusion_metrics stages stale"
    assert all(s.startswith("fusion_metrics") for s in stale), stale
    assert {f"fusion_metrics@{m}" for m in TINY["methods"]} <= stale, stale


def test_second_repro_does_nothing_and_param_change_is_local(workspace):
    status = _run(["dvc", "status", "--json"], workspace)
    assert json.loads(status[status.index("{") :]) == {}
    params = yaml.safe_load((workspace / "params.yaml").read_text())
    params["fusion"]["weighted"]["weight_ir"] = 0.8
    (workspace / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    status = _run(["dvc", "status", "--json"], workspace)
    stale = set(json.loads(status[status.index("{") :]))
    assert stale, "changing fusion.weighted should make its stages stale"
    assert all("weighted" in s or s.endswith("report") for s in stale), stale
    assert any(s.startswith("fuse@weighted") or "fuse@weighted" in s for s in stale)
    assert not any("_base" in s for s in stale)  # the shared task models do not depend on it


def test_protocol_switch_retrains_a_shared_model_only_to_or_from_retrain(workspace):
    """frozen -> finetune keeps the shared detector (the same training), frozen -> retrain drops
    the shared segmenter; every per-method task stage of both tasks is stale."""
    path = workspace / "params.yaml"
    original = path.read_text()
    params = yaml.safe_load(original)
    params["detect"]["protocol"] = "finetune"
    params["segment"]["protocol"] = "retrain"
    try:
        path.write_text(yaml.safe_dump(params, sort_keys=False))
        _run(["dvc", "repro", "--single-item", "task_plan"], workspace)
        status = _run(["dvc", "status", "--json"], workspace)
        stale = set(json.loads(status[status.index("{") :]))
    finally:
        path.write_text(original)
        _run(["dvc", "repro", "--single-item", "task_plan"], workspace)
    assert "detect_base" not in stale and "segment_base" in stale, stale
    for task in ("detect", "segment"):
        assert {f"{task}@{m}" for m in TINY["methods"]} <= stale, stale
    status = _run(["dvc", "status", "--json"], workspace)  # back as it was
    assert not {"task_plan", "detect_base", "segment_base"} & set(
        json.loads(status[status.index("{") :])
    )


def test_dvc_plots_definitions_resolve(workspace):
    # `dvc plots show --json` renders nothing (no vega from a CDN) and names each plot's data
    out = _run(["dvc", "plots", "show", "--json"], workspace)
    # the JSON document first; DVC may add a line on stderr (e.g. a plot whose method is absent)
    data = json.JSONDecoder().raw_decode(out[out.index("{") :])[0]["data"]
    for plot_id, n_min in (
        ("detect_mAP50_per_method", len(TINY["methods"])),
        ("segment_mIoU_per_method", len(TINY["methods"])),
        ("coconet_training_loss", 1),
    ):
        assert plot_id in data, sorted(data)
        values = data[plot_id][0]["content"]["data"]["values"]
        assert len(values) >= n_min, (plot_id, values)


def test_external_method_with_test_images_only_is_scored_frozen(workspace):
    """The user path of a published method: a flat folder of fused test images. Its scores come
    from the shared models; with the visible images as its 'fusion' it scores exactly as vis."""
    folder = workspace / "published"
    folder.mkdir()
    for image in (workspace / "data" / "fused" / "vis" / "test").glob("*.png"):
        shutil.copy2(image, folder / image.name)
    params = yaml.safe_load((workspace / "params.yaml").read_text())
    params["methods"] = [*params["methods"], "external_pub"]
    params["fusion"]["external_pub"] = {"dir": "published"}
    (workspace / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    status = _run(["dvc", "status", "--json"], workspace)
    stale = set(json.loads(status[status.index("{") :]))
    assert not any("_base" in s for s in stale) and any("external_pub" in s for s in stale)
    _run(["dvc", "repro"], workspace)
    for task in ("detect", "segment"):
        ext = json.loads(
            (workspace / "results" / "scores" / task / "external_pub.json").read_text()
        )
        vis = json.loads((workspace / "results" / "scores" / task / "vis.json").read_text())
        assert ext["protocol"] == "frozen"
        assert ext["per_seed"] == vis["per_seed"], (task, ext, vis)


def test_registered_root_runs_only_its_stages_and_remove_undoes_it(workspace):
    """`mmif external add --root` on a finished pipeline: `dvc status` lists only the new
    methods' stages and the report; `dvc repro` scores them with the shared models (a copy of
    the visible images scores exactly as vis); `remove` leaves only the report stale."""
    zoo = workspace.parent / "zoo"
    for name, source in (("PubVis", "vis"), ("PubIr", "ir")):
        (zoo / name).mkdir(parents=True)
        for image in (workspace / "data" / "fused" / source / "test").glob("*.png"):
            shutil.copy2(image, zoo / name / image.name)
    before = {p: p.stat().st_mtime_ns for p in zoo.rglob("*")}
    _run(["dvc", "status"], workspace)  # settle: the previous test's repro
    _run(["mmif", "external", "add", "--root", "../zoo"], workspace)
    status = _run(["dvc", "status", "--json"], workspace)
    stale = set(json.loads(status[status.index("{") :]))
    new = {f"{k}_external@{m}" for k in ("fuse", "fusion_metrics", "detect", "segment")
           for m in ("PubVis", "PubIr")}  # fmt: skip
    assert stale == new | {"report"}, stale
    _run(["dvc", "repro"], workspace)
    status = _run(["dvc", "status", "--json"], workspace)
    assert json.loads(status[status.index("{") :]) == {}
    for task in ("detect", "segment"):
        scores = workspace / "results" / "scores" / task
        ext = json.loads((scores / "PubVis.json").read_text())
        vis = json.loads((scores / "vis.json").read_text())
        assert ext["protocol"] == "frozen" and ext["per_seed"] == vis["per_seed"]
    ranking = (workspace / "results" / "report" / "tables" / "ranking_detect.csv").read_text()
    assert "PubVis" in ranking and "PubIr" in ranking
    # registering again changes nothing; remove undoes it (and only the report is stale)
    _run(["mmif", "external", "add", "--root", "../zoo"], workspace)
    status = _run(["dvc", "status", "--json"], workspace)
    assert json.loads(status[status.index("{") :]) == {}
    _run(["mmif", "external", "remove", "PubIr"], workspace)
    status = _run(["dvc", "status", "--json"], workspace)
    assert set(json.loads(status[status.index("{") :])) == {"report"}
    assert not (workspace / "data" / "fused" / "PubIr").exists()
    assert {p: p.stat().st_mtime_ns for p in zoo.rglob("*")} == before  # the user's folder
