"""Find and read every result file the report uses (layout in docs/CONTRACTS.md).

    <results>/fusion_metrics/<method>.json, <method>_per_image.csv
    <results>/detect/<method>/seed_<s>/metrics.json, predictions.json, curves.csv
    <results>/segment/<method>/seed_<s>/metrics.json, confusion.npz, curves.csv
    <results>/coconet/train_metrics.json, loss_curve.csv
    <results>/train/<method>.json                  (train-stage summary written by dvc.yaml)
    <results>/../models/<method>/loss_curve.csv    (when results/coconet/ has none)
    <fused>/<method>/info.json

Methods and seeds are discovered from the folders; anything absent is simply not in the
returned `Results` (the report then says "not available"). A file that exists but cannot be
read raises `ResultsError` naming the file and what to re-run.
"""

from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from detection.ap import ImageDetections
from mmif.errors import ResultsError

log = logging.getLogger(__name__)

TASKS = ("detect", "segment")
SEED_DIR = re.compile(r"^seed_(\d+)$")
#: keys of a task metrics.json that describe the run rather than score it
#: (counts "n_*" and anything about epochs are facts too, see `is_score_key`)
RUN_FACT_KEYS = frozenset(
    {
        "seed", "model", "arch", "encoder", "pretrained", "per_class", "device", "skipped",
        "protocol", "requested_protocol", "imgsz", "val_split", "base_model", "base_encoder",
        "base_pretrained", "base_appearance", "base_members", "base_calibration",
        "base_class_offsets", "calibration", "class_offsets", "calibration_share_ratio",
        "calibration_pixels", "calibration_skipped", "machine", "base_machine",
    }
)  # fmt: skip
#: which stage writes each kind of file (named in error messages)
STAGE_FOR = {
    "fusion_metrics": "mmif metrics",
    "detect": "mmif detect",
    "segment": "mmif segment",
    "coconet": "mmif train --method coconet",
}


def is_score_key(key: str) -> bool:
    """True for metrics.json keys that score the run (mAP50, mIoU, ...), False for run facts
    (seed, n_test_images, epochs, best_epoch, ...)."""
    return key not in RUN_FACT_KEYS and not key.startswith("n_") and "epoch" not in key


@dataclass
class SeedRun:
    """One downstream training run: results/<task>/<method>/seed_<s>/."""

    task: str
    method: str
    seed: int
    folder: Path
    metrics: dict[str, Any]

    @property
    def scores(self) -> dict[str, float]:
        """Top-level numeric scores (mAP50, mIoU, ...), run facts left out."""
        return {
            k: float(v)
            for k, v in self.metrics.items()
            if is_score_key(k) and isinstance(v, (int, float)) and not isinstance(v, bool)
        }

    @property
    def per_class(self) -> dict[str, dict[str, float]]:
        value = self.metrics.get("per_class") or {}
        return value if isinstance(value, dict) else {}

    def file(self, name: str) -> Path | None:
        path = self.folder / name
        return path if path.is_file() else None

    @cached_property
    def predictions(self) -> DetectionPredictions | None:
        """predictions.json of a detection run, None where absent. Read once and kept: the
        report's statistics, per-condition tables and qualitative grid all need it, and
        decoding the JSON of every run is a large part of the report's time. Callers must not
        modify the arrays."""
        path = self.file("predictions.json")
        return None if path is None else load_predictions(path)


@dataclass(frozen=True)
class Sourced:
    """A loaded value and the file it came from (named in the report)."""

    value: Any
    source: str


@dataclass
class Results:
    """Everything found under a results folder (and the fused images' info.json files)."""

    root: Path
    fusion: dict[str, dict[str, Any]] = field(default_factory=dict)  # method -> metrics json
    fusion_per_image: dict[str, pd.DataFrame] = field(default_factory=dict)
    runs: dict[str, dict[str, dict[int, SeedRun]]] = field(
        default_factory=dict
    )  # task -> method -> seed
    skipped: dict[str, dict[str, str]] = field(default_factory=dict)  # task -> method -> reason
    train_metrics: dict[str, Sourced] = field(default_factory=dict)  # method -> training summary
    loss_curves: dict[str, Sourced] = field(default_factory=dict)  # method -> loss curve table
    fused_info: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def coconet_metrics(self) -> dict[str, Any] | None:
        item = self.train_metrics.get("coconet")
        return item.value if item else None

    def task_runs(self, task: str) -> dict[str, dict[int, SeedRun]]:
        return self.runs.get(task, {})

    def keep(self, methods: list[str] | tuple[str, ...]) -> list[str]:
        """Drop every method not in `methods` (outputs a removed method left behind); returns
        the dropped ones."""
        keep = set(methods)
        dropped = sorted(set(self.methods()) - keep)
        for table in (self.fusion, self.fusion_per_image, self.fused_info):
            for m in [m for m in table if m not in keep]:
                del table[m]
        for by_method in (*self.runs.values(), *self.skipped.values()):
            for m in [m for m in by_method if m not in keep]:
                del by_method[m]
        return dropped

    def methods(self, baselines: list[str] | tuple[str, ...] = ()) -> list[str]:
        """Every method seen anywhere; baselines first (in the given order), then alphabetical."""
        seen = set(self.fusion) | set(self.fused_info)
        for by_method in self.runs.values():
            seen |= set(by_method)
        return [b for b in baselines if b in seen] + sorted(seen - set(baselines))


def read_json(path: Path, stage: str) -> Any:
    try:
        return json.loads(Path(path).read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ResultsError(
            f"{path}: unreadable JSON ({exc}); re-run `{stage}` to rewrite it"
        ) from exc


def read_csv(path: Path, stage: str, text_columns: tuple[str, ...] = ()) -> pd.DataFrame:
    """A CSV result file; `text_columns` are read verbatim (an image named "nan" or "1" stays a
    name), the others with the usual missing-value spellings."""
    try:
        if not text_columns:
            return pd.read_csv(path)
        columns = pd.read_csv(path, nrows=0).columns
        missing = ["", "nan", "NaN", "NA", "null"]
        return pd.read_csv(
            path,
            dtype={c: str for c in text_columns if c in columns},
            keep_default_na=False,
            na_values={c: missing for c in columns if c not in text_columns},
        )
    except (OSError, UnicodeDecodeError, ValueError) as exc:  # pandas errors derive from ValueError
        raise ResultsError(
            f"{path}: unreadable CSV ({exc}); re-run `{stage}` to rewrite it"
        ) from exc


def load_results(results_dir: Path, fused_root: Path | None = None) -> Results:
    """Discover and read the metric files under `results_dir` (and `fused_root/<method>/info.json`)."""
    results_dir = Path(results_dir)
    res = Results(root=results_dir)
    _load_fusion(res, results_dir / "fusion_metrics")
    for task in TASKS:
        res.skipped[task] = {}
        res.runs[task] = _load_task(results_dir / task, task, res.skipped[task])
    if fused_root is not None and Path(fused_root).is_dir():
        for info in sorted(Path(fused_root).glob("*/info.json")):
            res.fused_info[info.parent.name] = read_json(
                info, f"mmif fuse --method {info.parent.name}"
            )
    _load_training(res, results_dir)
    log.info(
        "results in %s: %d fusion-metric files, %s",
        results_dir,
        len(res.fusion),
        ", ".join(f"{t} {sum(len(s) for s in res.runs[t].values())} runs" for t in TASKS),
    )
    return res


def _load_training(res: Results, results_dir: Path) -> None:
    """Training summaries and loss curves of the learned fusion methods.

    docs/CONTRACTS.md puts CoCoNet's files in results/coconet/; the train stage of dvc.yaml
    writes results/train/<method>.json and keeps loss_curve.csv in models/<method>/. Both are
    read, the contract's files first.
    """
    top = results_dir.parent

    def rel(p: Path) -> str:
        return str(p.relative_to(top)) if p.is_relative_to(top) else str(p)

    for path in sorted((results_dir / "train").glob("*.json")):
        data = read_json(path, f"mmif train --method {path.stem}")
        if isinstance(data, dict):
            res.train_metrics[path.stem] = Sourced(data, rel(path))
    contract = results_dir / "coconet" / "train_metrics.json"
    if contract.is_file():
        res.train_metrics["coconet"] = Sourced(
            read_json(contract, STAGE_FOR["coconet"]), rel(contract)
        )
    candidates = {"coconet": [results_dir / "coconet" / "loss_curve.csv"]}
    for method in sorted(set(res.train_metrics) | set(res.fused_info) | {"coconet"}):
        candidates.setdefault(method, []).append(top / "models" / method / "loss_curve.csv")
    for method, paths in candidates.items():
        path = next((p for p in paths if p.is_file()), None)
        if path is not None:
            res.loss_curves[method] = Sourced(
                read_csv(path, f"mmif train --method {method}"), rel(path)
            )


def _load_fusion(res: Results, folder: Path) -> None:
    if not folder.is_dir():
        return
    for path in sorted(folder.glob("*.json")):
        data = read_json(path, STAGE_FOR["fusion_metrics"])
        if not isinstance(data, dict):
            raise ResultsError(
                f"{path}: expected a JSON object of metric means; re-run `mmif metrics`"
            )
        res.fusion[path.stem] = data
        per_image = folder / f"{path.stem}_per_image.csv"
        if per_image.is_file():
            # one row per image and nothing else (no summary row: any stem is an image)
            df = read_csv(per_image, STAGE_FOR["fusion_metrics"], text_columns=("name",))
            res.fusion_per_image[path.stem] = df.reset_index(drop=True)


def _load_task(folder: Path, task: str, skipped: dict[str, str]) -> dict[str, dict[int, SeedRun]]:
    """Runs of one task; runs the stage skipped ({"skipped": true, "reason": ...}) go to
    `skipped` (method -> reason) instead."""
    out: dict[str, dict[int, SeedRun]] = {}
    if not folder.is_dir():
        return out
    for method_dir in sorted(
        p for p in folder.iterdir() if p.is_dir() and not p.name.startswith(".")
    ):
        seeds: dict[int, SeedRun] = {}
        for seed_dir in sorted(method_dir.iterdir()):
            m = SEED_DIR.match(seed_dir.name)
            if not (m and seed_dir.is_dir()):
                continue
            metrics_file = seed_dir / "metrics.json"
            if not metrics_file.is_file():
                log.warning(
                    "%s: no metrics.json (unfinished run?); seed left out of the report", seed_dir
                )
                continue
            metrics = read_json(metrics_file, STAGE_FOR[task])
            if not isinstance(metrics, dict):
                raise ResultsError(
                    f"{metrics_file}: expected a JSON object; re-run `{STAGE_FOR[task]}`"
                )
            if metrics.get("skipped"):
                skipped[method_dir.name] = str(metrics.get("reason") or "skipped by the stage")
                continue
            seeds[int(m.group(1))] = SeedRun(
                task, method_dir.name, int(m.group(1)), seed_dir, metrics
            )
        if seeds:
            out[method_dir.name] = dict(sorted(seeds.items()))
    return out


@dataclass(frozen=True)
class DetectionPredictions:
    """predictions.json of one detection run: per-image ground truth and predictions (pixels)."""

    classes: list[str]
    stems: list[str]
    sizes: list[tuple[int, int]]  # (width, height)
    images: list[ImageDetections]

    def by_stem(self) -> dict[str, ImageDetections]:
        return dict(zip(self.stems, self.images, strict=True))


def load_predictions(path: Path) -> DetectionPredictions:
    data = read_json(path, STAGE_FOR["detect"])
    try:
        classes = [str(c) for c in data["classes"]]
        stems, sizes, images = [], [], []
        for item in data["images"]:
            stems.append(str(item["stem"]))
            sizes.append((int(item.get("width", 0)), int(item.get("height", 0))))
            images.append(ImageDetections.from_lists(item.get("gt") or [], item.get("pred") or []))
    except (KeyError, TypeError, ValueError) as exc:
        raise ResultsError(
            f"{path}: not in the predictions.json format of docs/CONTRACTS.md ({exc!r}); re-run `mmif detect`"
        ) from exc
    return DetectionPredictions(classes=classes, stems=stems, sizes=sizes, images=images)


@dataclass(frozen=True)
class SegmentationConfusion:
    """confusion.npz of one segmentation run: (N, C, C) counts, rows truth, columns prediction."""

    stems: list[str]
    confusion: np.ndarray
    class_names: list[str]

    def reindexed(self, stems: list[str]) -> np.ndarray:
        """Confusion matrices in the order of `stems` (all of which must be present)."""
        pos = {s: i for i, s in enumerate(self.stems)}
        return self.confusion[[pos[s] for s in stems]]


def load_confusion(path: Path) -> SegmentationConfusion:
    try:
        with np.load(path, allow_pickle=False) as z:
            stems = [str(s) for s in z["stems"]]
            confusion = np.asarray(z["confusion"], dtype=np.int64)
            names = [str(s) for s in z["class_names"]]
    except (OSError, KeyError, ValueError) as exc:
        raise ResultsError(
            f"{path}: not a confusion.npz with stems, confusion, class_names ({exc}); re-run `mmif segment`"
        ) from exc
    n, c = len(stems), len(names)
    if confusion.shape != (n, c, c):
        raise ResultsError(
            f"{path}: confusion has shape {confusion.shape}, expected ({n}, {c}, {c}) from stems and class_names; "
            "re-run `mmif segment`"
        )
    return SegmentationConfusion(stems=stems, confusion=confusion, class_names=names)


def find_key(data: Any, key: str) -> Any:
    """First value of `key` anywhere in nested dicts/lists (None when absent)."""
    if isinstance(data, dict):
        if key in data:
            return data[key]
        values = data.values()
    elif isinstance(data, list):
        values = data
    else:
        return None
    for v in values:
        found = find_key(v, key)
        if found is not None:
            return found
    return None
