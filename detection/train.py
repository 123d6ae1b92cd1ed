"""Train a YOLO detector on one method's fused images and evaluate it on the test split.

`train_and_evaluate` writes, atomically, the three files of docs/CONTRACTS.md
(results/detect/<method>/seed_<s>/): metrics.json, predictions.json and curves.csv.
ultralytics' own run folder (weights, results.csv, label caches) lives in a scratch folder under
.cache/detect and is deleted afterwards unless `DetectConfig.keep_run`.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import math
import os
import shutil
import time
from pathlib import Path
from typing import Any

from detection.config import DetectConfig, ultralytics_device
from detection.dataset import YoloDataset, build_yolo_dataset, read_yolo_labels
from detection.evaluate import coco_map, round_record, summarise_det_metrics, yolo_to_pixel_boxes
from detection.offline import cache_root
from mmif.config import ConfigError
from mmif.errors import DeviceError, MissingInputError
from mmif.io import make_temp_dir, write_text

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
#: largest tolerated gap between ultralytics' and torchmetrics' mAP50 before a warning
CROSS_CHECK_TOLERANCE = 0.02


def train_and_evaluate(
    fused_root: Path, data_root: Path, out_dir: Path, cfg: DetectConfig, seed: int
) -> dict:
    """Train on the train split (validating on val), evaluate on test, write the outputs.

    fused_root: data/fused/<method> (its folder name is taken as the method name).
    data_root: the prepared dataset with det_classes and labels.
    out_dir: results/detect/<method>/seed_<seed>; receives metrics.json, predictions.json, curves.csv.
    Returns the metrics.json content. With the same seed, data and config, a CPU rerun gives
    the same metrics (ultralytics seeds everything and runs deterministic algorithms).
    """
    from detection.yolo import (  # configures ultralytics offline
        OfflineDetectionTrainer,
        RecordingValidator,
    )

    fused_root, data_root, out_dir = Path(fused_root), Path(data_root), Path(out_dir)
    method = fused_root.name
    cfg.validate()
    device = ultralytics_device(cfg.device)
    if "," in device:
        _check_ddp_possible()
    log.info(
        "detection %s seed %d: %s (%s), %d epochs at %d px on %s",
        method,
        seed,
        cfg.model,
        "pretrained weights" if cfg.pretrained else "trained from scratch, no pretrained weights",
        cfg.epochs,
        cfg.imgsz,
        device,
    )
    # removed at the end; one left by a killed run is removed by the next run (mmif.io)
    work = make_temp_dir(cache_root() / "detect", f"{method}-seed{seed}")
    try:
        ds = build_yolo_dataset(fused_root, data_root, work / "data")
        start = time.perf_counter()
        model = _load_model(cfg)
        model.train(
            trainer=OfflineDetectionTrainer, **_train_arguments(cfg, ds, device, seed, work)
        )
        trainer = model.trainer
        weights = Path(trainer.best) if Path(trainer.best).is_file() else Path(trainer.last)
        curves = curves_csv(Path(trainer.save_dir) / "results.csv")
        epochs_run = curves.count("\n") - 1  # rows of results.csv (also right after DDP training)
        log.info(
            "trained %d epochs in %.1f s; evaluating %s on the test split",
            epochs_run,
            time.perf_counter() - start,
            weights.name,
        )

        validators: list[RecordingValidator] = []

        def make_validator(args: dict[str, Any], _callbacks: Any = None) -> RecordingValidator:
            validators.append(RecordingValidator(args=args, _callbacks=_callbacks))
            return validators[-1]

        test_model = _yolo()(str(weights))
        det_metrics = test_model.val(
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
        ultra = summarise_det_metrics(det_metrics, ds.class_names)
        tm = coco_map(records, ds.class_names, max_det=cfg.max_det)
    finally:
        if cfg.keep_run:  # renamed: a temporary name would be reclaimed by the next run
            kept = work.with_name(work.name.lstrip(".").replace(".tmp-", ".run-", 1))
            os.replace(work, kept)
            log.info("ultralytics run folder kept: %s", kept)
        else:
            shutil.rmtree(work, ignore_errors=True)

    metrics = {
        "mAP50": ultra["mAP50"],
        "mAP50_95": ultra["mAP50_95"],
        "precision": ultra["precision"],
        "recall": ultra["recall"],
        "tm_mAP50": tm["mAP50"],
        "tm_mAP50_95": tm["mAP50_95"],
        "per_class": {
            name: {
                **ultra["per_class"][name],
                "tm_AP50": tm["per_class"][name]["AP50"],
                "tm_AP50_95": tm["per_class"][name]["AP50_95"],
            }
            for name in ds.class_names
        },
        "n_test_images": len(records),
        "epochs": cfg.epochs,
        "epochs_run": epochs_run,
        "val_split": ds.sources["val"],
        "model": cfg.model,
        "pretrained": cfg.pretrained,
        "seed": seed,
    }
    _log_cross_check(metrics)
    write_text(
        out_dir / "predictions.json",
        json.dumps({"classes": ds.class_names, "images": records}) + "\n",
    )
    write_text(out_dir / "curves.csv", curves)
    write_text(out_dir / "metrics.json", json.dumps(metrics, indent=2) + "\n")
    log.info("%s seed %d: wrote %s", method, seed, out_dir)
    return metrics


def _yolo():
    from ultralytics import YOLO

    return YOLO


def _load_model(cfg: DetectConfig):
    """The ultralytics model named by cfg.model; never downloads."""
    YOLO = _yolo()
    if cfg.pretrained:
        path = Path(cfg.model)
        if not path.is_file():
            raise MissingInputError(
                f"detect.model: weights file {path} not found (nothing is downloaded); put it there or "
                "use an architecture yaml such as yolov8n.yaml to train from scratch"
            )
        return YOLO(str(path.resolve()))
    try:
        return YOLO(cfg.model)
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
        rows = read_yolo_labels(ds.label_path("test", stem), len(ds.class_names))
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
    ul, tm = metrics["mAP50"], metrics["tm_mAP50"]
    if ul is None or tm is None:
        log.warning("test split has no ground-truth boxes: mAP is undefined")
        return
    gap = abs(ul - tm)
    level = logging.WARNING if gap > CROSS_CHECK_TOLERANCE else logging.INFO
    log.log(
        level,
        "test mAP50 %.4f (ultralytics) vs %.4f (torchmetrics/COCO), gap %.4f; mAP50-95 %.4f vs %.4f; pretrained=%s",
        ul,
        tm,
        gap,
        metrics["mAP50_95"],
        metrics["tm_mAP50_95"],
        metrics["pretrained"],
    )
