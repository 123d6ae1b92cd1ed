"""build_report on small fake results trees: files, self-contained HTML, missing parts."""

from __future__ import annotations

import json
import re
import shutil
from html.parser import HTMLParser

import pytest

from mmif.io import OUTPUT_MARKER
from report import ReportConfig, build_report
from report.loading import ResultsError


class _Refs(HTMLParser):
    def __init__(self):
        super().__init__()
        self.imgs: list[str] = []
        self.refs: list[tuple[str, str, str]] = []
        self.tags: set[str] = set()

    def handle_starttag(self, tag, attrs):
        self.tags.add(tag)
        for name, value in attrs:
            if name in ("src", "href", "srcset", "action", "poster", "data", "xlink:href"):
                self.refs.append((tag, name, value or ""))
            if tag == "img" and name == "src":
                self.imgs.append(value or "")


def test_all_files_written(built_report):
    out = built_report.out
    for name in ("report.html", "report.md", "summary.json"):
        assert (out / name).is_file()
    for table in ("fusion_metrics", "detect_scores", "segment_scores", "detect_per_class", "segment_per_class",
                  "significance", "correlations", "recomputed"):  # fmt: skip
        assert (out / "tables" / f"{table}.csv").is_file(), table
        assert (out / "tables" / f"{table}.md").is_file(), table
    for plot in ("task_scores", "fusion_metrics", "detect_per_class", "segment_per_class",
                 "detect_curves", "segment_curves", "coconet_loss_curve", "correlation_detect_mAP50",
                 "correlation_segment_mIoU"):  # fmt: skip
        assert (out / "plots" / f"{plot}.png").stat().st_size > 1000, plot
        assert (out / "plots" / f"{plot}.svg").read_text().lstrip().startswith("<?xml"), plot
    # the qualitative grid is a picture: PNG only, and the report links no SVG of it
    assert (out / "plots" / "qualitative_grid.png").stat().st_size > 1000
    assert not (out / "plots" / "qualitative_grid.svg").exists()
    assert "qualitative_grid.svg" not in (out / "report.md").read_text()
    # nothing left over from the atomic write next to the report
    assert not [p for p in out.parent.iterdir() if p.name.startswith(".report")]


def test_html_is_self_contained(built_report):
    text = (built_report.out / "report.html").read_text()
    parser = _Refs()
    parser.feed(text)
    assert len(parser.imgs) >= 10
    assert all(src.startswith("data:image/png;base64,") for src in parser.imgs)
    assert not [r for r in parser.refs if re.match(r"\s*(https?:)?//", r[2], re.I)]
    assert not parser.tags & {"script", "link", "iframe", "object", "embed"}
    assert not re.search(r"url\(|@import", text, re.I)


def test_markdown_links_resolve_and_tables_inline(built_report):
    md = (built_report.out / "report.md").read_text()
    links = re.findall(r"\]\(([^)]+)\)", md)
    files = [link for link in links if not link.startswith("#")]
    assert files and all((built_report.out / link).is_file() for link in files)
    ids = set(re.findall(r'<a id="([^"]+)"></a>', md))
    anchors = [link[1:] for link in links if link.startswith("#")]
    assert anchors and set(anchors) <= ids
    assert "| method" in md


def test_report_states_convention_vgg_and_dataset(built_report):
    md = (built_report.out / "report.md").read_text()
    html = (built_report.out / "report.html").read_text()
    for text in (md, html):
        assert "cddfuse" in text
        assert "CoCoNet VGG19 pretrained: NO" in text
        assert "Dataset: fake" in text


def test_significant_gain_is_marked(built_report):
    sig = (built_report.out / "tables" / "significance.csv").read_text().splitlines()
    header = sig[0].split(",")
    rows = [dict(zip(header, line.split(","), strict=True)) for line in sig[1:]]
    good = [r for r in rows if r["method"] == "coconet" and r["baseline"] == "vis"]
    assert {r["task"] for r in good} == {"detect", "segment"}
    assert all(
        r["verdict"] == "gain" and r["mark"] == "*" and float(r["p_value"]) < 0.05 for r in good
    )
    md = (built_report.out / "tables" / "detect_scores.md").read_text()
    assert "coconet" in md


def test_summary_json_headline(built_report):
    data = json.loads(
        (built_report.out / "summary.json").read_text(),
        parse_constant=lambda c: pytest.fail(f"{c} in JSON"),
    )
    coconet = data["methods"]["coconet"]
    assert coconet["detect"]["mAP50"] == pytest.approx(0.95)  # seed mean of the metrics.json values
    assert coconet["segment"]["n_seeds"] == 2
    assert coconet["detect"]["mAP50_p_vs_vis"] < 0.05
    assert set(coconet["fusion"]) == {"EN", "SSIM", "MSE"}
    assert data["coconet_vgg_pretrained"] is False
    assert data["fusion_metric_convention"] == "cddfuse"


def test_missing_task_results_say_not_available(tmp_path, fake_tree_builder):
    # medical-like: fusion metrics only, no tasks, no CoCoNet, no images for the grid
    tree = fake_tree_builder(tmp_path, {"vis": 0.5, "ir": 0.4, "max": 0.6}, detect=False, segment=False,
                             coconet=False, write_images=False, skipped_tasks=True)  # fmt: skip
    out = tmp_path / "report"
    build_report(tree.results, tree.data, tree.fused, out, ReportConfig(bootstrap_samples=50))
    md = (out / "report.md").read_text()
    assert (
        "Object detection: not available (skipped by the stage: dataset 'fake' has no labels)" in md
    )
    assert "Semantic segmentation: not available" in md
    assert "Differences to the baselines: not available" in md
    assert "Qualitative grid not available" in md
    assert "not applicable (CoCoNet not in this run)" in md
    assert (out / "plots" / "fusion_metrics.png").is_file()
    assert not (out / "tables" / "significance.csv").exists()
    summary = json.loads((out / "summary.json").read_text())
    assert set(summary["methods"]["max"]) == {"fusion"}
    parser = _Refs()
    parser.feed((out / "report.html").read_text())
    assert all(src.startswith("data:") for src in parser.imgs)


def test_method_without_detection_runs(tmp_path, fake_tree_builder):
    tree = fake_tree_builder(
        tmp_path,
        {"vis": 0.4, "ir": 0.4, "max": 0.7},
        segment=False,
        write_images=False,
        n_images=6,
        fusion_metrics=("EN",),
    )
    shutil.rmtree(tree.results / "detect" / "max")
    shutil.rmtree(tree.results / "detect" / "ir" / "seed_1")
    (tree.results / "detect" / "vis" / "seed_1" / "predictions.json").unlink()
    out = tmp_path / "report"
    build_report(
        tree.results,
        tree.data,
        tree.fused,
        out,
        ReportConfig(bootstrap_samples=50, n_grid_images=0),
    )
    md = (out / "report.md").read_text()
    assert "Object detection results not available for: max." in md
    assert "detect/vis/seed_1: no predictions.json" in md  # noted, run left out of the bootstrap
    assert "switched off" in md
    summary = json.loads((out / "summary.json").read_text())
    assert summary["methods"]["ir"]["detect"]["n_seeds"] == 1
    assert summary["methods"]["ir"]["detect"]["mAP50_std"] is None  # one seed: no spread


def test_failed_build_keeps_previous_report(tmp_path, fake_tree_builder):
    tree = fake_tree_builder(
        tmp_path, {"vis": 0.4, "max": 0.7}, segment=False, detect=False, write_images=False
    )
    out = tmp_path / "report"
    out.mkdir()
    (out / "old.txt").write_text("previous")
    (out / OUTPUT_MARKER).write_text("an earlier report written by mmif")
    (tree.results / "fusion_metrics" / "max.json").write_text("{not json")
    with pytest.raises(ResultsError, match=r"max\.json.*mmif metrics"):
        build_report(tree.results, tree.data, tree.fused, out, ReportConfig())
    assert (out / "old.txt").read_text() == "previous"
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".report")) == []


def test_empty_results_folder_is_an_error(tmp_path):
    (tmp_path / "results").mkdir()
    with pytest.raises(FileNotFoundError, match="no results found"):
        build_report(
            tmp_path / "results",
            tmp_path / "data",
            tmp_path / "fused",
            tmp_path / "out",
            ReportConfig(),
        )


def test_training_files_from_the_dvc_layout(tmp_path, fake_tree_builder):
    # dvc.yaml's train stage: results/train/<method>.json and models/<method>/loss_curve.csv
    tree = fake_tree_builder(tmp_path, {"vis": 0.4, "coconet": 0.7}, detect=False, segment=False,
                             coconet=False, write_images=False)  # fmt: skip
    (tree.results / "train").mkdir()
    (tree.results / "train" / "coconet.json").write_text(
        json.dumps({"method": "coconet", "trainable": True, "vgg_pretrained": True})
    )
    (tree.results / "train" / "vis.json").write_text(
        json.dumps({"method": "vis", "trainable": False})
    )
    (tmp_path / "models" / "coconet").mkdir(parents=True)
    (tmp_path / "models" / "coconet" / "loss_curve.csv").write_text(
        "step,total\n1,2.0\n2,1.5\n3,1.2\n"
    )
    info = tree.fused / "coconet" / "info.json"
    info.write_text(json.dumps({"method": "coconet", "params": {"vgg_pretrained": True}}))
    out = tmp_path / "report"
    build_report(
        tree.results,
        tree.data,
        tree.fused,
        out,
        ReportConfig(bootstrap_samples=10, n_grid_images=0),
    )
    md = (out / "report.md").read_text()
    assert (
        "CoCoNet VGG19 pretrained: yes, ImageNet weights (results/train/coconet.json, coconet/info.json"
        in md
    )
    assert "models/coconet/loss_curve.csv" in md
    assert (out / "plots" / "coconet_loss_curve.png").is_file()
    assert json.loads((out / "summary.json").read_text())["coconet_vgg_pretrained"] is True


def test_scores_leave_out_run_facts(built_report):
    header = (built_report.out / "tables" / "segment_scores.csv").read_text().splitlines()[1:]
    scores = {line.split(",")[2] for line in header}
    assert scores == {"mIoU", "pixel_accuracy"}  # not n_train_images, best_epoch, ...
    detect = {
        line.split(",")[2]
        for line in (built_report.out / "tables" / "detect_scores.csv").read_text().splitlines()[1:]
    }
    assert "epochs_run" not in detect and "mAP50" in detect


def test_run_facts_describe_the_shared_segmenter(tmp_path, fake_tree_builder):
    # frozen results name the shared model they were scored with: its augmentation, and how
    # many networks it averages when there are several (segment.base.members)
    tree = fake_tree_builder(
        tmp_path, {"vis": 0.4, "ir": 0.5}, detect=False, coconet=False, protocol="frozen"
    )
    for path in (tree.results / "segment").glob("*/seed_*/metrics.json"):
        metrics = json.loads(path.read_text())
        metrics.update(base_encoder="mobilenet_v2", base_pretrained=False, base_epochs=28,
                       base_members=2, base_appearance="contrast 0.6, noise 0.05",
                       base_calibration="class_shares",
                       base_class_offsets={"background": 0.0, "person": -1.2})  # fmt: skip
        path.write_text(json.dumps(metrics))
    out = tmp_path / "report"
    build_report(tree.results, tree.data, tree.fused, out, ReportConfig(bootstrap_samples=10))
    md = (out / "report.md").read_text()
    assert (
        "Semantic segmentation shared model: mobilenet_v2 (2 networks per seed, class "
        "probabilities averaged), calibration: class_shares (one offset per class, fit on the val "
        "split's source images, the same for every method), pretrained: False, epochs: 28, "
        "photometric augmentation: contrast 0.6, noise 0.05" in md
    )
    scores = (out / "tables" / "segment_scores.csv").read_text()
    assert "base_members" not in scores and "offsets" not in scores

    # fine-tuned models were calibrated again, on each method's own val images
    for path in (tree.results / "segment").glob("*/seed_*/metrics.json"):
        metrics = json.loads(path.read_text())
        metrics.update(calibration="class_shares", class_offsets={"person": -0.5})
        path.write_text(json.dumps(metrics))
    build_report(tree.results, tree.data, tree.fused, out, ReportConfig(bootstrap_samples=10))
    md = (out / "report.md").read_text()
    assert "fit after fine-tuning on each method's own val images" in md


def test_run_facts_name_the_machines_that_trained_and_scored(tmp_path, fake_tree_builder):
    tree = fake_tree_builder(
        tmp_path, {"vis": 0.4, "ir": 0.5}, detect=False, coconet=False, protocol="frozen"
    )
    out = tmp_path / "report"

    def record(**where):
        for path in (tree.results / "segment").glob("*/seed_*/metrics.json"):
            metrics = {**json.loads(path.read_text()), **where}
            path.write_text(json.dumps(metrics))
        build_report(tree.results, tree.data, tree.fused, out, ReportConfig(bootstrap_samples=10))
        return (out / "report.md").read_text()

    md = record()  # nothing recorded (results of older code): no machine fact
    assert "machine:" not in md
    md = record(machine="CPU A, torch 2", base_machine="CPU A, torch 2")
    assert "Semantic segmentation machine: models trained on CPU A, torch 2." in md
    md = record(machine="GPU B, torch 2")
    assert "models trained on CPU A, torch 2, then run on GPU B, torch 2." in md
    seed0 = next((tree.results / "segment" / "ir").glob("seed_0/metrics.json"))
    seed0.write_text(
        json.dumps({**json.loads(seed0.read_text()), "base_machine": "CPU C, torch 2"})
    )
    build_report(tree.results, tree.data, tree.fused, out, ReportConfig(bootstrap_samples=10))
    md = (out / "report.md").read_text()
    assert "models trained on CPU A, torch 2; CPU C, torch 2" in md
    assert "several machines" in md
    scores = (out / "tables" / "segment_scores.csv").read_text()
    assert "machine" not in scores


def test_each_predictions_file_is_decoded_once(tmp_path, monkeypatch):
    """The statistics, the per-condition tables and the qualitative grid share one decoded copy
    of each predictions.json (`SeedRun.predictions`)."""
    from pathlib import Path

    import report.loading as loading
    from tests.report.conftest import build_fake_report

    decoded: list[Path] = []
    original = loading.load_predictions

    def counting(path):
        decoded.append(Path(path))
        return original(path)

    monkeypatch.setattr(loading, "load_predictions", counting)
    tree, out = build_fake_report(
        tmp_path,
        {"vis": 0.4, "ir": 0.3, "max": 0.6},
        bootstrap_samples=50,
        n_grid_images=1,
        n_images=8,
    )
    assert (out / "report.html").is_file()
    runs = sorted((tree.results / "detect").glob("*/seed_*/predictions.json"))
    assert runs and sorted(decoded) == runs


def test_figures_written_in_one_process_are_the_same_files(built_report, tmp_path):
    """report.jobs only changes who writes the figure files (default 2 processes; 1: the report's
    own): the report folder is the same, byte for byte."""
    from report import ReportConfig, build_report

    tree = built_report.tree
    alone = tmp_path / "report"
    build_report(
        tree.results, tree.data, tree.fused, alone,
        ReportConfig(bootstrap_samples=200, n_grid_images=2, jobs=1),
    )  # fmt: skip
    assert ReportConfig().jobs == 2  # built_report's figures came from two processes

    def files(root):
        return {
            p.relative_to(root).as_posix(): p.read_bytes()
            for p in sorted(root.rglob("*"))
            if p.is_file()
        }

    two, one = files(built_report.out), files(alone)
    assert sorted(two) == sorted(one)
    assert [name for name in two if two[name] != one[name]] == []
    assert sum(name.endswith((".png", ".svg")) for name in one) >= 15
