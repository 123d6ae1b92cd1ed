"""Train YOLO detectors and score them on a method's fused test images, under each protocol.

- `train_and_evaluate` (protocol retrain): a detector from scratch on one method's fused train
  split, scored on its test split.
- `train_base` (frozen, finetune): the shared detector of a seed, trained on the train split's
  infrared and visible images as separate samples (or started from `detect.base_weights`);
  writes model.pt, curves.csv and metrics.json to models/detect_base/seed_<s>/.
- `evaluate_frozen` (frozen): a shared detector scores one method's fused test images.
- `finetune_and_evaluate` (finetune): a shared detector fine-tuned on one method's fused train
  split, then scored on its test split.

The scoring functions write, atomically, the three files of docs/CONTRACTS.md
(results/detect/<method>/seed_<s>/): metrics.json, predictions.json and curves.csv. `mAP50`,
`mAP50_95` and per-class `AP50` come from `detection.ap` (the one AP definition the report's
intervals and tests recompute); ultralytics' own values (`ul_*`) and torchmetrics' (`tm_*`)
are kept as cross-checks. ultralytics' run folders (weights, results.csv, label caches) live in
a scratch folder under .cache/detect and are deleted afterwards unless `DetectConfig.keep_run`.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import logging
import math
import os
import shutil
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from detection.ap import ImageDetections, detection_scores
from detection.config import DetectConfig, ultralytics_device
from detection.dataset import (
    PREPARED_FIX,
    YoloDataset,
    build_source_dataset,
    build_yolo_dataset,
)
from detection.evaluate import coco_map, round_record, summarise_det_metrics, yolo_to_pixel_boxes
from detection.offline import cache_root, project_root
from mmif.augment import APPEARANCE_ENV, Appearance
from mmif.errors import ConfigError, DeviceError, MissingInputError
from mmif.io import make_temp_dir, write_bytes, write_json, write_text
from mmif.labels import read_yolo_file
from mmif.runtime import machine_description

log = logging.getLogger(__name__)

#: curves.csv column <- ultralytics results.csv column
CURVE_COLUMNS = {
    "epoch": "epoch",
    "box_loss": "train/box_loss",
    "cls_loss": "train/cls_loss",
    "dfl_loss": "train/dfl_loss",
    "precision": "metrics/precision(B)",
    "recall": "metrics/recall(B)",
    "mAP50": "metrics/mAP50(B)",
    "mAP50_95": "metrics/mAP50-95(B)",
}
#: largest tolerated gap between the own and torchmetrics' COCO mAP50 before a warning
CROSS_CHECK_TOLERANCE = 0.02
#: file names of a shared (base) detector in models/detect_base/seed_<s>/
BASE_WEIGHTS = "model.pt"


@dataclass
class TrainedDetector:
    """Weights of a finished training and its per-epoch curves (curves.csv text)."""

    weights: Path
    curves: str
    epochs_run: int
    seconds: float


@contextmanager
def _environment(name: str, value: str | None) -> Iterator[None]:
    """Set (or, for None, unset) an environment variable for the block, then restore it."""
    old = os.environ.pop(name, None)
    if value is not None:
        os.environ[name] = value
    try:
        yield
    finally:
        os.environ.pop(name, None)
        if old is not None:
            os.environ[name] = old


@contextmanager
def _scratch(name: str, keep: bool) -> Iterator[Path]:
    # removed at the end; one left by a killed run is removed by the next run (mmif.io)
    work = make_temp_dir(cache_root() / "detect", name)
    try:
        yield work
    finally:
        if keep:  # renamed: a temporary name would be reclaimed by the next run
            kept = work.with_name(work.name.lstrip(".").replace(".tmp-", ".run-", 1))
            os.replace(work, kept)
            log.info("ultralytics run folder kept: %s", kept)
        else:
            shutil.rmtree(work, ignore_errors=True)


def train_detector(
    ds: YoloDataset, cfg: DetectConfig, seed: int, work: Path, device: str
) -> TrainedDetector:
    """Train `cfg.model` (an architecture yaml, or a .pt file to start from) on `ds`.

    Returns the best weights by validation fitness (the last ones when no best was saved).
    """
    from detection.yolo import (  # configures ultralytics offline
        EMA_TAU_ENV,
        OfflineDetectionTrainer,
    )

    start = time.perf_counter()
    model = _load_model(cfg)
    appearance = cfg.appearance_config()
    with (
        _environment(APPEARANCE_ENV, appearance.to_env() if appearance.active else None),
        _environment(EMA_TAU_ENV, repr(float(cfg.ema_tau))),
    ):
        model.train(
            trainer=OfflineDetectionTrainer, **_train_arguments(cfg, ds, device, seed, work)
        )
    trainer = model.trainer
    weights = Path(trainer.best) if Path(trainer.best).is_file() else Path(trainer.last)
    curves = curves_csv(Path(trainer.save_dir) / "results.csv")
    epochs_run = curves.count("\n") - 1  # rows of results.csv (also right after DDP training)
    seconds = time.perf_counter() - start
    log.info("trained %d epochs in %.1f s (%s)", epochs_run, seconds, weights.name)
    return TrainedDetector(weights, curves, epochs_run, seconds)


def predict_test_split(
    weights: Path, ds: YoloDataset, cfg: DetectConfig, work: Path, device: str
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Score `weights` on the test split of `ds`: (predictions.json records, ultralytics metrics)."""
    from detection.yolo import RecordingValidator

    validators: list[RecordingValidator] = []

    def make_validator(args: dict[str, Any], _callbacks: Any = None) -> RecordingValidator:
        validators.append(RecordingValidator(args=args, _callbacks=_callbacks))
        return validators[-1]

    det_metrics = _yolo()(str(weights)).val(
        validator=make_validator,
        data=str(ds.yaml_path),
        split="test",
        imgsz=cfg.imgsz,
        batch=cfg.batch,
        conf=cfg.conf,
        iou=cfg.iou,
        max_det=cfg.max_det,
        device=device.split(",")[0],
        workers=cfg.workers,
        plots=False,
        verbose=False,
        project=str(work),
        name="test",
        exist_ok=True,
    )
    records = collect_test_records(ds, validators[-1].records)
    return records, summarise_det_metrics(det_metrics, ds.class_names)


def score_records(
    records: list[dict[str, Any]],
    class_names: list[str],
    ultra: dict[str, Any],
    max_det: int,
) -> dict[str, Any]:
    """metrics.json scores of a test evaluation: own COCO-style AP, ultralytics and torchmetrics."""
    images = [ImageDetections.from_lists(r["gt"], r["pred"]) for r in records]
    own = detection_scores(images, class_names, max_det)
    tm = coco_map(records, class_names, max_det=max_det)
    return {
        "mAP50": own["mAP50"],
        "mAP50_95": own["mAP50_95"],
        "precision": ultra["precision"],
        "recall": ultra["recall"],
        "ul_mAP50": ultra["mAP50"],
        "ul_mAP50_95": ultra["mAP50_95"],
        "tm_mAP50": tm["mAP50"],
        "tm_mAP50_95": tm["mAP50_95"],
        "per_class": {
            name: {
                **own["per_class"][name],
                "ul_AP50": ultra["per_class"][name]["AP50"],
                "ul_AP50_95": ultra["per_class"][name]["AP50_95"],
                "tm_AP50": tm["per_class"][name]["AP50"],
                "tm_AP50_95": tm["per_class"][name]["AP50_95"],
            }
            for name in class_names
        },
        "n_test_images": len(records),
    }


def write_outputs(
    out_dir: Path, class_names: list[str], records: list[dict], curves: str, metrics: dict
) -> None:
    """predictions.json, curves.csv and metrics.json (the last one written last)."""
    _log_cross_check(metrics)
    write_json(
        out_dir / "predictions.json", {"classes": class_names, "images": records}, indent=None
    )
    write_text(out_dir / "curves.csv", curves)
    write_json(out_dir / "metrics.json", metrics)
    log.info("wrote %s", out_dir)


def _machine(device: str) -> str:
    """`machine_description` of an ultralytics device string ("cpu", "0", "0,1": the first GPU)."""
    return machine_description("cpu" if device == "cpu" else f"cuda:{device.split(',')[0]}")


def _device(cfg: DetectConfig) -> str:
    device = ultralytics_device(cfg.device)
    if "," in device:
        _check_ddp_possible()
    return device


def train_and_evaluate(
    fused_root: Path, data_root: Path, out_dir: Path, cfg: DetectConfig, seed: int
) -> dict:
    """Protocol retrain: train on the train split (validating on val), evaluate on test.

    fused_root: data/fused/<method> (its folder name is taken as the method name).
    data_root: the prepared dataset with det_classes and labels.
    out_dir: results/detect/<method>/seed_<seed>; receives metrics.json, predictions.json, curves.csv.
    Returns the metrics.json content. With the same seed, data and config, a CPU rerun gives
    the same metrics (ultralytics seeds everything and runs deterministic algorithms).
    """
    fused_root, data_root, out_dir = Path(fused_root), Path(data_root), Path(out_dir)
    method = fused_root.name
    cfg.validate()
    device = _device(cfg)
    log.info(
        "detection %s seed %d (retrain): %s (%s), %d epochs at %d px on %s",
        method,
        seed,
        cfg.model,
        "pretrained weights" if cfg.pretrained else "trained from scratch, no pretrained weights",
        cfg.epochs,
        cfg.imgsz,
        device,
    )
    with _scratch(f"{method}-seed{seed}", cfg.keep_run) as work:
        ds = build_yolo_dataset(fused_root, data_root, work / "data")
        trained = train_detector(ds, cfg, seed, work, device)
        records, ultra = predict_test_split(trained.weights, ds, cfg, work, device)
    metrics = {
        **score_records(records, ds.class_names, ultra, cfg.max_det),
        "protocol": "retrain",
        "epochs": cfg.epochs,
        "epochs_run": trained.epochs_run,
        "val_split": ds.sources["val"],
        "imgsz": cfg.imgsz,
        "model": cfg.model,
        "pretrained": cfg.pretrained,
        "seed": seed,
        "machine": _machine(device),
    }
    write_outputs(out_dir, ds.class_names, records, trained.curves, metrics)
    return metrics


def train_base(data_root: Path, out_dir: Path, cfg: DetectConfig, seed: int) -> dict:
    """The shared detector of one seed (protocols frozen and finetune).

    Trains `cfg.model` (random weights from an architecture yaml, or a local .pt such as
    COCO-pretrained weights) on the train split's infrared and visible images as separate
    samples with the same labels, validating on the val split's. Writes to out_dir
    (models/detect_base/seed_<seed>): model.pt (the best weights by validation fitness),
    curves.csv and metrics.json (what was trained: epochs, image size, images, seconds).
    """
    data_root, out_dir = Path(data_root), Path(out_dir)
    cfg.validate()
    device = _device(cfg)
    log.info(
        "shared detector seed %d: %s (%s), %d epochs at %d px on ir + vis images, %s",
        seed,
        cfg.model,
        "from pretrained weights" if cfg.pretrained else "from scratch",
        cfg.epochs,
        cfg.imgsz,
        device,
    )
    with _scratch(f"base-seed{seed}", cfg.keep_run) as work:
        ds = build_source_dataset(data_root, work / "data", modality_labels=cfg.modality_labels)
        trained = train_detector(ds, cfg, seed, work, device)
        weights = trained.weights.read_bytes()
    info = {
        "role": "shared detector (protocols frozen, finetune)",
        "trained_on": "train split, infrared and visible images as separate samples",
        "modality_labels": cfg.modality_labels,
        "appearance": cfg.appearance_config().facts(),
        "n_train_images": len(ds.stems["train"]),
        "n_val_images": len(ds.stems["val"]),
        "val_split": ds.sources["val"],
        "model": cfg.model,
        "pretrained": cfg.pretrained,
        "epochs": cfg.epochs,
        "epochs_run": trained.epochs_run,
        "imgsz": cfg.imgsz,
        "seed": seed,
        "seconds": round(trained.seconds, 1),
        "machine": _machine(device),
    }
    write_bytes(out_dir / BASE_WEIGHTS, weights)
    write_text(out_dir / "curves.csv", trained.curves)
    write_json(out_dir / "metrics.json", info)
    return info


def _base_facts(base_dir: Path) -> dict[str, Any]:
    path = Path(base_dir) / "metrics.json"
    try:
        info = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise MissingInputError(
            f"{path}: no shared detector here ({exc}); run `mmif detect-base` (dvc repro detect_base)"
        ) from exc
    return {
        "base_model": info.get("model"),
        "base_pretrained": info.get("pretrained"),
        "base_epochs": info.get("epochs"),
        "base_appearance": Appearance.describe(info.get("appearance")),
        "base_machine": info.get("machine"),
    }


def base_weights_file(base_dir: Path) -> Path:
    weights = Path(base_dir) / BASE_WEIGHTS
    if not weights.is_file():
        raise MissingInputError(
            f"{weights}: no shared detector weights; run `mmif detect-base` (dvc repro detect_base) first"
        )
    return weights


def evaluate_frozen(
    fused_root: Path,
    data_root: Path,
    base_dir: Path,
    out_dir: Path,
    cfg: DetectConfig,
    seed: int,
    requested: str = "frozen",
) -> dict:
    """Protocol frozen: the shared detector of `seed` (base_dir) scores the method's test images.

    Only the fused test split is needed. `requested` records the protocol asked for when this is
    a fallback (finetune of a method without fused train images). curves.csv is empty: nothing
    was trained for the method.
    """
    fused_root, data_root, out_dir = Path(fused_root), Path(data_root), Path(out_dir)
    method = fused_root.name
    weights = base_weights_file(base_dir)
    device = _device(cfg)
    with _scratch(f"{method}-frozen-seed{seed}", cfg.keep_run) as work:
        ds = build_yolo_dataset(fused_root, data_root, work / "data", splits=("test",))
        records, ultra = predict_test_split(weights, ds, cfg, work, device)
    metrics = {
        **score_records(records, ds.class_names, ultra, cfg.max_det),
        "protocol": "frozen",
        **({"requested_protocol": requested} if requested != "frozen" else {}),
        "epochs": 0,
        "imgsz": cfg.imgsz,
        **_base_facts(base_dir),
        "model": str(weights),
        "pretrained": True,
        "seed": seed,
        "machine": _machine(device),
    }
    write_outputs(out_dir, ds.class_names, records, ",".join(CURVE_COLUMNS) + "\n", metrics)
    return metrics


def finetune_and_evaluate(
    fused_root: Path,
    data_root: Path,
    base_dir: Path,
    out_dir: Path,
    cfg: DetectConfig,
    seed: int,
) -> dict:
    """Protocol finetune: the shared detector of `seed` fine-tuned on the method's fused train
    split (validating on its val split) for cfg.epochs, then scored on its test split."""
    fused_root, data_root, out_dir = Path(fused_root), Path(data_root), Path(out_dir)
    method = fused_root.name
    weights = base_weights_file(base_dir)
    device = _device(cfg)
    tuned_cfg = dataclasses.replace(cfg, model=str(weights.resolve()))
    log.info(
        "detection %s seed %d (finetune): from %s, %d epochs at %d px on %s",
        method,
        seed,
        weights,
        cfg.epochs,
        cfg.imgsz,
        device,
    )
    with _scratch(f"{method}-finetune-seed{seed}", cfg.keep_run) as work:
        ds = build_yolo_dataset(fused_root, data_root, work / "data")
        trained = train_detector(ds, tuned_cfg, seed, work, device)
        records, ultra = predict_test_split(trained.weights, ds, cfg, work, device)
    metrics = {
        **score_records(records, ds.class_names, ultra, cfg.max_det),
        "protocol": "finetune",
        "epochs": cfg.epochs,
        "epochs_run": trained.epochs_run,
        "val_split": ds.sources["val"],
        "imgsz": cfg.imgsz,
        **_base_facts(base_dir),
        "model": str(weights),
        "pretrained": True,
        "seed": seed,
        "machine": _machine(device),
    }
    write_outputs(out_dir, ds.class_names, records, trained.curves, metrics)
    return metrics


def _yolo():
    from ultralytics import YOLO

    return YOLO


def _load_model(cfg: DetectConfig):
    """The ultralytics model named by cfg.model; never downloads.

    A .pt file loads those weights; a yaml is a local file (relative to the working directory
    or to the repository, e.g. detection/yolov8-slim.yaml) or one of ultralytics' built-in
    architectures (yolov8n.yaml, yolo11n.yaml, ...).
    """
    YOLO = _yolo()
    if cfg.pretrained:
        path = Path(cfg.model)
        if not path.is_file():
            raise MissingInputError(
                f"detect.model: weights file {path} not found (nothing is downloaded); put it there or "
                "use an architecture yaml such as yolov8n.yaml to train from scratch"
            )
        return YOLO(str(path.resolve()))
    local = [p for p in (Path(cfg.model), project_root() / cfg.model) if p.is_file()]
    try:
        return YOLO(str(local[0].resolve()) if local else cfg.model)
    except FileNotFoundError as exc:
        raise ConfigError(
            f"detect.model: {cfg.model!r} is neither a local yaml file nor an ultralytics architecture "
            "(e.g. yolov8n.yaml, yolov8s.yaml, yolo11n.yaml)"
        ) from exc


def _train_arguments(
    cfg: DetectConfig, ds: YoloDataset, device: str, seed: int, work: Path
) -> dict[str, Any]:
    hyper = (
        "epochs imgsz batch workers optimizer lr0 lrf momentum weight_decay warmup_epochs cos_lr nbs "
        "patience close_mosaic mosaic mixup fliplr flipud hsv_h hsv_s hsv_v degrees translate scale amp "
        "deterministic max_det"
    ).split()
    return {
        **{key: getattr(cfg, key) for key in hyper},
        "data": str(ds.yaml_path),
        "device": device,
        "seed": seed,
        "pretrained": cfg.pretrained,
        "project": str(work),
        "name": "train",
        "exist_ok": True,
        "plots": False,
        "val": True,
        "cache": False,
        "verbose": False,
    }


def _check_ddp_possible() -> None:
    try:
        import cloudpickle  # noqa: F401
    except ImportError as exc:
        raise DeviceError(
            "detect.device names several GPUs: ultralytics' multi-GPU (DDP) training needs the cloudpickle "
            "package, which it would otherwise pip-install at run time; install cloudpickle or use one GPU"
        ) from exc


def collect_test_records(
    ds: YoloDataset, recorded: dict[str, dict[str, Any]]
) -> list[dict[str, Any]]:
    """predictions.json images: ground truth from the label files, predictions from the validator."""
    records = []
    for stem in ds.stems["test"]:
        if stem not in recorded:
            raise RuntimeError(
                f"the test evaluation produced no entry for {stem} ({ds.image_path('test', stem)})"
            )
        entry = recorded[stem]
        rows = read_yolo_file(ds.label_path("test", stem), len(ds.class_names), PREPARED_FIX)
        record = {
            "stem": stem,
            "width": entry["width"],
            "height": entry["height"],
            "gt": yolo_to_pixel_boxes(rows, entry["width"], entry["height"]),
            "pred": entry["pred"].tolist(),
        }
        records.append(round_record(record))
    return records


def curves_csv(results_csv: Path) -> str:
    """ultralytics' results.csv as curves.csv text (epoch,box_loss,...,mAP50_95); missing columns stay empty."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CURVE_COLUMNS)
    if not results_csv.is_file():
        log.warning("%s not found: curves.csv has a header only", results_csv)
        return out.getvalue()
    with results_csv.open(newline="") as f:
        reader = csv.DictReader(f)
        for row in reader:
            row = {(k or "").strip(): (v or "").strip() for k, v in row.items()}
            writer.writerow([_clean_number(row.get(src, "")) for src in CURVE_COLUMNS.values()])
    return out.getvalue()


def _clean_number(value: str) -> str:
    try:
        number = float(value)
    except ValueError:
        return ""
    if math.isnan(number):
        return ""
    return str(int(number)) if number.is_integer() and "." not in value else f"{number:.6g}"


def _log_cross_check(metrics: dict[str, Any]) -> None:
    own, tm, ul = metrics["mAP50"], metrics["tm_mAP50"], metrics["ul_mAP50"]
    if own is None or tm is None:
        log.warning("test split has no ground-truth boxes: mAP is undefined")
        return
    gap = abs(own - tm)
    level = logging.WARNING if gap > CROSS_CHECK_TOLERANCE else logging.INFO
    log.log(
        level,
        "test mAP50 %.4f (own COCO-style AP) vs %.4f (torchmetrics/COCO), gap %.4f; "
        "ultralytics %.4f; mAP50-95 %.4f (own) vs %.4f (torchmetrics)",
        own,
        tm,
        gap,
        ul if ul is not None else math.nan,
        metrics["mAP50_95"] if metrics["mAP50_95"] is not None else math.nan,
        metrics["tm_mAP50_95"] if metrics["tm_mAP50_95"] is not None else math.nan,
    )
