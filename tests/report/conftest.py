"""Builders of small fake results trees (docs/CONTRACTS.md layout) for the report tests."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest

from mmif.io import write_image
from mmif.layout import Manifest

DET_CLASSES = ["person", "car"]
SEG_CLASSES = ["background", "person", "car"]
IMAGE_W, IMAGE_H = 40, 30


@dataclass
class FakeTree:
    results: Path
    data: Path
    fused: Path
    stems: list[str] = field(default_factory=list)


def _boxes(rng: np.random.Generator, n: int) -> list[list[float]]:
    out = []
    for _ in range(n):
        x, y = rng.uniform(0, IMAGE_W - 12), rng.uniform(0, IMAGE_H - 10)
        w, h = rng.uniform(6, 12), rng.uniform(5, 10)
        out.append(
            [int(rng.integers(len(DET_CLASSES))), x, y, min(IMAGE_W, x + w), min(IMAGE_H, y + h)]
        )
    return out


def fake_predictions(
    gt: list[list[list[float]]], hit_rate: float, rng: np.random.Generator
) -> list[list[list[float]]]:
    """Per image: each ground-truth box found with probability hit_rate (score high), plus one
    low-score false positive; a higher hit_rate gives a higher mAP50."""
    preds = []
    for boxes in gt:
        p = []
        for cls, x1, y1, x2, y2 in boxes:
            if rng.random() < hit_rate:
                p.append(
                    [cls, float(rng.uniform(0.5, 1.0)), x1 + 0.3, y1 + 0.2, x2 - 0.3, y2 + 0.1]
                )
        x, y = rng.uniform(0, IMAGE_W - 8), rng.uniform(0, IMAGE_H - 8)
        p.append(
            [int(rng.integers(len(DET_CLASSES))), float(rng.uniform(0.05, 0.6)), x, y, x + 6, y + 6]
        )
        preds.append(p)
    return preds


def fake_confusion(n_images: int, accuracy: float, rng: np.random.Generator) -> np.ndarray:
    """(N, C, C) counts where a share `accuracy` of each class's pixels is predicted correctly."""
    c = len(SEG_CLASSES)
    out = np.zeros((n_images, c, c), dtype=np.int64)
    for i in range(n_images):
        for t in range(c):
            n = int(rng.integers(50, 150))
            right = int(rng.binomial(n, accuracy))
            out[i, t, t] = right
            wrong = rng.integers(0, c - 1, size=n - right)
            for w in wrong:
                out[i, t, w if w < t else w + 1] += 1
    return out


def build_fake_tree(
    root: Path,
    quality: dict[str, float],
    seeds: tuple[int, ...] = (0, 1),
    n_images: int = 12,
    detect: bool = True,
    segment: bool = True,
    coconet: bool = True,
    fusion_metrics: tuple[str, ...] = ("EN", "SSIM", "MSE"),
    write_images: bool = True,
    skipped_tasks: bool = False,
    protocol: str | None = None,
    jitter: float = 0.0,
) -> FakeTree:
    """Write a prepared dataset, fused images and a results tree under `root`.

    quality: method -> value in (0, 1]; it sets detection hit rate and segmentation accuracy, so
    methods with clearly different quality differ significantly on the tasks.
    skipped_tasks: with detect/segment False, write the stages' "skipped" placeholder outputs
    (pipelines.tasks.write_skipped) as a dataset without labels gets.
    protocol: written into every task metrics.json (None: no key, as results from before the
    protocols, read as retrain).
    jitter: std of the per-seed noise added to the task scores of metrics.json (and to the
    detection hit rate and segmentation accuracy of the seed) and of the per-image noise of the
    fusion metrics (0: every seed and image scores the same).
    """
    extra = {"protocol": protocol} if protocol else {}
    rng = np.random.default_rng(123)
    tree = FakeTree(
        results=root / "results", data=root / "data" / "prepared", fused=root / "data" / "fused"
    )
    tree.stems = [f"{i:05d}" for i in range(n_images)]
    Manifest(
        name="fake",
        provenance="synthetic test data",
        splits={"test": n_images},
        det_classes=DET_CLASSES if detect else [],
        seg_classes=SEG_CLASSES if segment else [],
        has_det_labels=detect,
        has_seg_masks=segment,
    ).save(tree.data)
    if write_images:
        for stem in tree.stems:
            write_image(
                tree.data / "test" / "ir" / f"{stem}.png",
                rng.integers(0, 255, (IMAGE_H, IMAGE_W), dtype=np.uint8),
            )
            write_image(
                tree.data / "test" / "vis" / f"{stem}.png",
                rng.integers(0, 255, (IMAGE_H, IMAGE_W, 3), dtype=np.uint8),
            )
            for m in quality:
                write_image(
                    tree.fused / m / "test" / f"{stem}.png",
                    rng.integers(0, 255, (IMAGE_H, IMAGE_W), dtype=np.uint8),
                )
    for m in quality:
        info = {"method": m, "params": {}}
        if m == "coconet":
            info["vgg_pretrained"] = False
        _json(tree.fused / m / "info.json", info)

    fm = tree.results / "fusion_metrics"
    for m, q in quality.items():
        values = {k: float(q * (i + 1) + rng.normal(0, 0.01)) for i, k in enumerate(fusion_metrics)}
        _json(fm / f"{m}.json", {"convention": "cddfuse", "n_images": n_images, **values})
        rows = ["name," + ",".join(fusion_metrics)]
        rows += [
            f"{s},"
            + ",".join(
                str(values[k] + (jitter * rng.normal() if jitter else 0.0)) for k in fusion_metrics
            )
            for s in tree.stems
        ]
        (fm / f"{m}_per_image.csv").write_text("\n".join(rows) + "\n")

    gt = [_boxes(rng, int(rng.integers(1, 4))) for _ in tree.stems]
    for m, q in quality.items():
        q_method = q
        for s in seeds:
            run_rng = np.random.default_rng(1000 * s + len(m))
            if jitter:  # (no draw without it: the other tests' random streams stay as they were)
                q = float(np.clip(q_method + jitter * run_rng.normal(), 0.0, 1.0))
            if detect:
                d = tree.results / "detect" / m / f"seed_{s}"
                preds = fake_predictions(gt, q, run_rng)
                images = [
                    {"stem": stem, "width": IMAGE_W, "height": IMAGE_H, "gt": g, "pred": p}
                    for stem, g, p in zip(tree.stems, gt, preds, strict=True)
                ]
                _json(d / "predictions.json", {"classes": DET_CLASSES, "images": images})
                _json(d / "metrics.json", {
                    "mAP50": q, "mAP50_95": q / 2, "precision": q, "recall": q, "tm_mAP50": q, "tm_mAP50_95": q / 2,
                    "per_class": {c: {"AP50": q, "AP50_95": q / 2} for c in DET_CLASSES},
                    "n_test_images": n_images, "epochs": 2, "epochs_run": 2, "val_split": "val", "model": "yolo11n",
                    "pretrained": False, "seed": s, **extra,
                })  # fmt: skip
                (d / "curves.csv").write_text(
                    "epoch,box_loss,cls_loss,dfl_loss,precision,recall,mAP50,mAP50_95\n"
                    + "".join(
                        f"{e},{2 - e * q},{1.5 - e * q},{1},{q},{q},{q * e / 2},{q * e / 4}\n"
                        for e in range(1, 3)
                    )
                )
            if segment:
                d = tree.results / "segment" / m / f"seed_{s}"
                conf = fake_confusion(n_images, q, run_rng)
                np.savez(d.mkdir(parents=True, exist_ok=True) or d / "confusion.npz", stems=np.array(tree.stems),
                         confusion=conf, class_names=np.array(SEG_CLASSES))  # fmt: skip
                _json(d / "metrics.json", {
                    "mIoU": q, "pixel_accuracy": q,
                    "per_class": {c: {"IoU": q} for c in SEG_CLASSES},
                    "absent_classes": [], "n_test_images": n_images, "n_train_images": 5, "n_val_images": 2, "best_epoch": 1,
                    "epochs": 2, "arch": "Unet", "encoder": "resnet18", "pretrained": False, "seed": s, "device": "cpu",
                    **extra,
                })  # fmt: skip
                (d / "curves.csv").write_text("epoch,train_loss,val_mIoU\n1,1.0,0.2\n2,0.8,0.3\n")
        q = q_method
    if skipped_tasks:
        reason = "dataset 'fake' has no labels"
        for task, files in (
            ("detect", ("metrics.json", "predictions.json")),
            ("segment", ("metrics.json",)),
        ):
            if (task == "detect" and detect) or (task == "segment" and segment):
                continue
            for m in quality:
                for s in seeds:
                    d = tree.results / task / m / f"seed_{s}"
                    for name in files:
                        _json(d / name, {"skipped": True, "reason": reason, "method": m, "seed": s})
                    (d / "curves.csv").write_text("epoch\n")
    if coconet:
        c = tree.results / "coconet"
        _json(c / "train_metrics.json", {"final_loss": 0.3, "vgg_pretrained": False, "epochs": 2})
        (c / "loss_curve.csv").write_text(
            "epoch,loss,loss_ssim,loss_mse\n1,1.0,0.5,0.5\n2,0.7,0.4,0.3\n"
        )
    return tree


def _json(path: Path, data: object) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data))


@pytest.fixture
def fake_tree_builder():
    """The builder function, for tests that want their own variant of the tree."""
    return build_fake_tree


@dataclass
class BuiltReport:
    tree: FakeTree
    out: Path


def build_fake_report(
    root: Path, quality: dict[str, float], *, bootstrap_samples: int, n_grid_images: int, **tree
):
    """`build_fake_tree(root, quality, **tree)` and its report in root/results/report; returns
    (tree, report folder)."""
    from report import ReportConfig, build_report

    fake = build_fake_tree(root, quality, **tree)
    out = root / "results" / "report"
    build_report(
        fake.results,
        fake.data,
        fake.fused,
        out,
        ReportConfig(bootstrap_samples=bootstrap_samples, n_grid_images=n_grid_images),
    )
    return fake, out


@pytest.fixture(scope="session")
def built_report(tmp_path_factory) -> BuiltReport:
    """One full report on a fake tree (4 methods, 2 seeds, both tasks), shared by the build tests."""

    root = tmp_path_factory.mktemp("report")
    quality = {"vis": 0.35, "ir": 0.3, "max": 0.5, "coconet": 0.95}
    tree, out = build_fake_report(
        root, quality, bootstrap_samples=200, n_grid_images=2, n_images=16
    )
    return BuiltReport(tree, out)


@pytest.fixture(scope="session")
def varied_report(tmp_path_factory) -> Path:
    """A report whose seeds and test images vary (intervals are not degenerate), 5 methods,
    3 seeds, protocol frozen; shared by the card, precision and browser tests."""

    root = tmp_path_factory.mktemp("varied")
    quality = {"vis": 0.45, "ir": 0.4, "max": 0.55, "mean": 0.42, "coconet": 0.9}
    _, out = build_fake_report(
        root,
        quality,
        bootstrap_samples=200,
        n_grid_images=1,
        seeds=(0, 1, 2),
        n_images=16,
        protocol="frozen",
        jitter=0.03,
        fusion_metrics=("EN", "SF", "AG", "MSE"),
    )
    return out
