"""`DetectConfig`: the `detect:` section of params.yaml."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mmif.protocol import SCHEDULES, build_schedule, check_protocol

_DEVICE = re.compile(r"^(auto|cpu|cuda(:\d+)?|\d+(,\d+)*)$")
OPTIMIZERS = ("auto", "SGD", "Adam", "AdamW", "NAdam", "RAdam", "RMSProp")


@dataclass
class DetectConfig:
    """How the YOLO detector is built, trained and evaluated on one method's fused images.

    model: "yolov8n.yaml" (or another ultralytics architecture yaml, or a local yaml file) trains
        from scratch; a path to a local .pt file fine-tunes those weights. Nothing is ever
        downloaded: a .pt path that does not exist is an error. metrics.json records `pretrained`.
    epochs: training epochs (fewer when early stopping triggers, see `patience`).
    imgsz: training and evaluation image size in pixels (long side, a multiple of 32).
    batch: images per training step (and per evaluation batch).
    device: "auto" (first CUDA GPU when available, else CPU), "cpu", "cuda", "cuda:N", or GPU
        indices such as "0" or "0,1" (several GPUs train with DDP).
    workers: DataLoader worker processes; ultralytics uses 0 on CPU whatever this says.
    optimizer: "auto" (ultralytics picks AdamW or SGD and its learning rate from the number of
        iterations, ignoring lr0 and momentum) or one of SGD, Adam, AdamW, NAdam, RAdam, RMSProp.
    lr0: initial learning rate; lrf: final learning rate as a fraction of lr0 (linear decay, or
        cosine when cos_lr). momentum: SGD momentum / Adam beta1. weight_decay: L2 factor.
    warmup_epochs: epochs of learning-rate warm-up (ultralytics warms up for at least 100 steps).
    The optimizer defaults (AdamW, lr0 0.01, nbs 16) suit a few hundred images trained from
    scratch; ultralytics' own defaults are optimizer auto, lr0 0.01, momentum 0.937, nbs 64,
    warmup_epochs 3.
    nbs: nominal batch size; gradients accumulate over round(nbs / batch) steps and weight decay
        scales with batch / nbs. The default (16, = batch) takes a step per batch, which small
        datasets trained from scratch need (ultralytics' 64 would take one step per 4 batches).
    patience: stop after this many epochs without a better validation fitness.
    close_mosaic: turn mosaic off for the last N epochs (0 keeps it on).
    mosaic, mixup: probabilities of mosaic and MixUp augmentation.
    fliplr, flipud: horizontal / vertical flip probabilities.
    hsv_h, hsv_s, hsv_v: hue, saturation and value jitter fractions (hue and saturation do
        nothing to grey images, which are replicated to three equal channels).
    degrees, translate, scale: random rotation (degrees), translation and scale (fractions).
    amp: mixed precision on CUDA (never on CPU); ultralytics' downloading self-check is skipped.
    conf, iou, max_det: confidence threshold, NMS IoU and maximum detections per image for the
        test evaluation and predictions.json (a low conf keeps the whole precision-recall curve).
    deterministic: deterministic algorithms (with the seed, reruns give the same metrics on CPU).
    jobs: seeds of one method trained at once by `mmif detect`, each in its own process with an
        equal share of the CPU cores: "auto" (every seed at once on the CPU, where one YOLO run
        keeps about one core busy; one at a time on CUDA) or a number (1 = one after another).
    modality_labels: the shared model only (protocols frozen, finetune): leave out of each
        infrared or visible training sample the boxes of classes that modality does not show,
        where the dataset records it (the synthetic default; detection.dataset.build_source_dataset).
    keep_run: keep ultralytics' run folder (weights, results.csv) in .cache/detect/runs instead
        of deleting it after the outputs are written.
    """

    model: str = "yolov8n.yaml"
    epochs: int = 30
    imgsz: int = 256
    batch: int = 16
    device: str = "auto"
    workers: int = 0
    optimizer: str = "AdamW"
    lr0: float = 0.01
    lrf: float = 0.01
    momentum: float = 0.9
    weight_decay: float = 0.0005
    warmup_epochs: float = 1.0
    cos_lr: bool = False
    nbs: int = 16
    patience: int = 50
    close_mosaic: int = 10
    mosaic: float = 1.0
    mixup: float = 0.0
    fliplr: float = 0.5
    flipud: float = 0.0
    hsv_h: float = 0.015
    hsv_s: float = 0.7
    hsv_v: float = 0.4
    degrees: float = 0.0
    translate: float = 0.1
    scale: float = 0.5
    amp: bool = True
    conf: float = 0.001
    iou: float = 0.7
    max_det: int = 300
    deterministic: bool = True
    keep_run: bool = False
    jobs: int | str = "auto"
    modality_labels: bool = True

    @property
    def pretrained(self) -> bool:
        """True when the model starts from a weights file rather than an architecture yaml."""
        return self.model.lower().endswith(".pt")

    def validate(self) -> None:
        """Raise ValueError naming the key of the first invalid value."""
        suffix = Path(self.model).suffix.lower()
        if suffix not in (".yaml", ".yml", ".pt"):
            raise ValueError(
                f"model: {self.model!r} is neither an architecture yaml (e.g. yolov8n.yaml) nor a local .pt file"
            )
        if suffix == ".pt" and not Path(self.model).is_file():
            raise ValueError(
                f"model: weights file {self.model!r} not found (nothing is downloaded); put the .pt file "
                "there or use an architecture yaml such as yolov8n.yaml to train from scratch"
            )
        positive_ints = {
            "epochs": self.epochs,
            "batch": self.batch,
            "nbs": self.nbs,
            "max_det": self.max_det,
        }
        for key, value in positive_ints.items():
            if value < 1:
                raise ValueError(f"{key}: must be at least 1, got {value}")
        if self.imgsz < 32 or self.imgsz % 32:
            raise ValueError(
                f"imgsz: must be a multiple of 32 (the network stride), got {self.imgsz}"
            )
        if not _DEVICE.match(self.device):
            raise ValueError(
                f"device: {self.device!r} is not one of auto, cpu, cuda, cuda:N or GPU indices like 0,1"
            )
        if self.workers < 0:
            raise ValueError(f"workers: must be >= 0, got {self.workers}")
        if self.jobs != "auto" and (
            isinstance(self.jobs, bool) or not isinstance(self.jobs, int) or self.jobs < 1
        ):
            raise ValueError(
                f"jobs: expected auto or a positive number of processes, got {self.jobs!r}"
            )
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(f"optimizer: {self.optimizer!r} is not one of {', '.join(OPTIMIZERS)}")
        if not self.lr0 > 0:
            raise ValueError(f"lr0: must be positive, got {self.lr0}")
        if not 0 < self.lrf <= 1:
            raise ValueError(f"lrf: must be in (0, 1], got {self.lrf}")
        if not 0 <= self.momentum < 1:
            raise ValueError(f"momentum: must be in [0, 1), got {self.momentum}")
        for key in ("weight_decay", "warmup_epochs", "degrees"):
            if getattr(self, key) < 0:
                raise ValueError(f"{key}: must be >= 0, got {getattr(self, key)}")
        if self.patience < 1:
            raise ValueError(f"patience: must be at least 1, got {self.patience}")
        if self.close_mosaic < 0:
            raise ValueError(f"close_mosaic: must be >= 0, got {self.close_mosaic}")
        for key in ("mosaic", "mixup", "fliplr", "flipud", "hsv_h", "hsv_s", "hsv_v", "conf"):
            if not 0 <= getattr(self, key) <= 1:
                raise ValueError(f"{key}: must be in [0, 1], got {getattr(self, key)}")
        for key in ("translate", "scale"):
            if not 0 <= getattr(self, key) < 1:
                raise ValueError(f"{key}: must be in [0, 1), got {getattr(self, key)}")
        if not 0 < self.iou <= 1:
            raise ValueError(f"iou: must be in (0, 1], got {self.iou}")


def ultralytics_device(device: str) -> str:
    """Translate `DetectConfig.device` to ultralytics' notation ("cpu", "0", "0,1").

    Every CUDA index goes through the project's one device check (`mmif.runtime.resolve_device`).
    """
    from mmif.runtime import resolve_device

    if device == "auto":
        return "0" if resolve_device("auto").type == "cuda" else "cpu"
    if device == "cpu":
        return "cpu"
    index = (
        device.split(":", 1)[1]
        if device.startswith("cuda:")
        else ("0" if device == "cuda" else device)
    )
    if device.startswith("cuda"):
        resolve_device(device, "detect.device")
    else:  # ultralytics' "0" or "0,1"
        for i in index.split(","):
            resolve_device(f"cuda:{i}", "detect.device")
    return index


#: DetectConfig keys that belong to the section (shared by every training of the task)
SHARED_KEYS = ("device", "workers", "conf", "iou", "max_det", "jobs", "keep_run")


@dataclass
class DetectSection:
    """The `detect:` section of params.yaml: a protocol, shared settings and three schedules.

    protocol: frozen | finetune | retrain (mmif.protocol; README "Protocols").
    base_weights: a local .pt file (e.g. COCO-pretrained yolov8n.pt) the shared model of frozen /
        finetune starts from instead of random weights; None trains it from scratch. Never
        downloaded: a path that does not exist is an error.
    device, workers, jobs, keep_run, conf, iou, max_det: as in DetectConfig, for every training
        and evaluation of the task.
    base: DetectConfig settings of the shared model (frozen, finetune), `model` (its
        architecture yaml) included: trained once per seed on the train split's infrared and
        visible images as separate samples; its imgsz is also the evaluation size of both
        protocols.
    finetune: overrides on top of `base` for each method's fine-tuning from the shared model
        (which replaces `model`).
    retrain: DetectConfig settings of each method's own from-scratch training (retrain),
        `model` included.
    """

    protocol: str = "frozen"
    base_weights: str | None = None
    device: str = "auto"
    workers: int = 0
    jobs: int | str = "auto"
    keep_run: bool = False
    conf: float = 0.001
    iou: float = 0.7
    max_det: int = 300
    base: dict[str, Any] = field(default_factory=dict)
    finetune: dict[str, Any] = field(default_factory=dict)
    retrain: dict[str, Any] = field(default_factory=dict)

    def validate(self) -> None:
        check_protocol(self.protocol)
        if self.base_weights is not None:
            path = Path(self.base_weights)
            if path.suffix.lower() != ".pt" or not path.is_file():
                raise ValueError(
                    f"base_weights: {self.base_weights!r} is not a local .pt file (nothing is "
                    "downloaded); put e.g. COCO-pretrained yolov8n.pt there or set it to null"
                )
        if "model" in self.finetune:
            raise ValueError(
                "finetune.model: fine-tuning starts from the shared model (set base.model, or "
                "base_weights for a pretrained start)"
            )
        for which in SCHEDULES:
            self.schedule(which)

    def schedule(self, which: str) -> DetectConfig:
        """The DetectConfig of one training: "base", "finetune" or "retrain"."""
        common = {k: getattr(self, k) for k in SHARED_KEYS}
        schedules = {"base": self.base, "finetune": self.finetune, "retrain": self.retrain}
        return build_schedule(DetectConfig, common, schedules, which, "params.yaml:detect")

    def evaluation(self) -> DetectConfig:
        """Settings of a frozen evaluation: the shared model's (its image size, batch)."""
        return self.schedule("base")
