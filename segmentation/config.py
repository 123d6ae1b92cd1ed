"""`SegmentConfig`: the `segment:` section of params.yaml."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from mmif.augment import Appearance
from mmif.protocol import SCHEDULES, build_schedule, check_protocol

_DEVICE = re.compile(r"^(auto|cpu|cuda(:\d+)?)$")

#: values of `calibration` besides null (segmentation.calibration)
CALIBRATIONS = ("class_shares",)


@dataclass
class SegmentConfig:
    """How the segmentation network is built and trained on fused images.

    arch: segmentation_models_pytorch architecture name ("Unet", "FPN", "DeepLabV3Plus", ...).
    encoder: smp encoder name; "resnet18" is light and needs nothing from the network.
    encoder_depth: encoder stages used (3 to 5; smp's default 5). 4 leaves out the deepest,
        stride-32 stage: a smaller, faster network whose receptive field still covers the
        objects of 256 x 192 images.
    decoder_channels: decoder widths, deepest first, for architectures that take them (Unet,
        UnetPlusPlus: one per encoder stage, e.g. [128, 64, 32, 16, 8]); None keeps smp's default.
    encoder_weights: path of a local encoder state dict (.pt/.pth/.safetensors, e.g. torchvision's
        resnet18 ImageNet weights). None trains from scratch. A path that does not exist logs a
        warning and trains from scratch; metrics.json records `pretrained` either way. Weights are
        never downloaded.
    epochs: training epochs. batch_size: images per step (training and evaluation).
    lr: AdamW learning rate, decayed by a cosine schedule to 0 over all steps.
    weight_decay: AdamW weight decay.
    crop_size: side of the square random training crop in pixels (a multiple of 32), taken after
        scale jitter; images smaller than the crop are padded with ignore. None trains on whole
        images (padded to a multiple of 32). Evaluation always uses whole images.
    scale_min, scale_max: range of the random scale factor applied to training images.
    hflip, vflip: random horizontal / vertical flips (probability 0.5 each) in training.
    dice_weight: weight of the Dice term; the loss is cross-entropy + dice_weight * Dice.
    class_weights: cross-entropy weight per class: None (unweighted), "balanced" (from the
        training masks' pixel frequencies, so thin classes count; segmentation.train) or one
        number per seg_class.
    class_weight_power: exponent of "balanced": each class is weighted by (median class
        frequency / its frequency) ** class_weight_power; 0.5 (the square root) by default, 1
        fully inverse-frequency, smaller values closer to unweighted.
    modality_labels: the shared model only (protocols frozen, finetune): in each infrared or
        visible training sample, ignore the pixels of classes that modality does not show, where
        the dataset records it (the synthetic default; segmentation.data.source_samples).
    appearance: photometric augmentation of the training images, e.g. {contrast: 0.3,
        gamma: 0.3, blur: 0.2, noise: 0.02} (mmif.augment: per image, never mixing modalities);
        None or {} leaves it off. Applied after the geometric augmentation.
    ema_decay: when above 0, validate, keep and test an exponential moving average of the
        weights (and BatchNorm statistics), updated after every step with this decay (e.g. 0.99:
        an average over about the last 100 steps); 0 uses the weights as trained.
    select_on_val: keep the epoch with the best val mIoU (True) or the last epoch (False).
    val_every: score the val split after every `val_every`-th epoch and after the last (the
        epochs between have no val mIoU in curves.csv); with select_on_val the best of the
        scored epochs is kept. Scoring does not change the training, only its time.
    members: networks trained independently for one model (each for `epochs`, member k with
        seed `member_seed(seed, k)`), whose class probabilities are averaged when it predicts. An
        average of two networks judges images less idiosyncratically than either: the seed
        spread of within-seed method differences shrinks (docs/MEASUREMENTS.md). A finetuned
        model has the members of its shared model.
    calibration: "class_shares" fits one score offset per class after training, on the val
        split, so that every class is predicted on as many val pixels as it is labelled there;
        the offsets are applied to every later prediction of the model (for the shared
        segmenter: on the val split's infrared and visible images, then unchanged for every
        method; for a fine-tuned or retrained one: on the method's own val images), see
        segmentation.calibration. None (null, the default) predicts with the raw scores; the
        offsets did not steady the seed-to-seed differences on every machine
        (docs/MEASUREMENTS.md).
    amp: mixed precision (float16 autocast); used on CUDA only, ignored on CPU.
    device: "auto" (CUDA when available), "cpu", "cuda" or "cuda:N".
    num_workers: DataLoader worker processes (0 loads in the main process).
    jobs: seeds of one method trained at once by `mmif segment`, each in its own process with an
        equal share of the CPU cores: "auto" (every seed at once on the CPU, one at a time on
        CUDA) or a number (1 = one after another in one process).
    """

    arch: str = "Unet"
    encoder: str = "resnet18"
    encoder_weights: str | None = None
    encoder_depth: int = 5
    decoder_channels: list[int] | None = None
    epochs: int = 30
    batch_size: int = 8
    lr: float = 1e-3
    weight_decay: float = 1e-4
    crop_size: int | None = None
    scale_min: float = 0.75
    scale_max: float = 1.25
    hflip: bool = True
    vflip: bool = False
    dice_weight: float = 1.0
    class_weights: str | list[float] | None = None
    class_weight_power: float = 0.5
    modality_labels: bool = True
    appearance: dict[str, float] | None = None
    ema_decay: float = 0.0
    select_on_val: bool = True
    val_every: int = 1
    members: int = 1
    calibration: str | None = None
    amp: bool = True
    device: str = "auto"
    num_workers: int = 0
    jobs: int | str = "auto"

    def appearance_config(self) -> Appearance:
        """`appearance` as an mmif.augment.Appearance (all zero when unset)."""
        return Appearance.from_mapping(self.appearance, "appearance")

    def validate(self) -> None:
        """Raise ValueError naming the key of the first invalid value. `arch` and `encoder`
        are checked against smp by `check_names` (it imports smp)."""
        if isinstance(self.encoder_depth, bool) or self.encoder_depth not in (3, 4, 5):
            raise ValueError(f"encoder_depth: 3, 4 or 5, got {self.encoder_depth!r}")
        if self.decoder_channels is not None and (
            not self.decoder_channels or any(int(c) < 1 for c in self.decoder_channels)
        ):
            raise ValueError(
                f"decoder_channels: a list of positive widths (or null), got {self.decoder_channels}"
            )
        if self.decoder_channels is not None and len(self.decoder_channels) != self.encoder_depth:
            raise ValueError(
                f"decoder_channels: one width per encoder stage, {self.encoder_depth} "
                f"(encoder_depth), got {len(self.decoder_channels)}"
            )
        if self.epochs < 1:
            raise ValueError(f"epochs: must be at least 1, got {self.epochs}")
        if self.batch_size < 1:
            raise ValueError(f"batch_size: must be at least 1, got {self.batch_size}")
        if not self.lr > 0:
            raise ValueError(f"lr: must be positive, got {self.lr}")
        if self.weight_decay < 0:
            raise ValueError(f"weight_decay: must be >= 0, got {self.weight_decay}")
        if self.crop_size is not None and (self.crop_size < 32 or self.crop_size % 32):
            raise ValueError(
                f"crop_size: must be a multiple of 32 (or null for whole images), got {self.crop_size}"
            )
        if not 0 < self.scale_min <= self.scale_max:
            raise ValueError(
                f"scale_min, scale_max: need 0 < scale_min <= scale_max, got {self.scale_min}, {self.scale_max}"
            )
        if isinstance(self.class_weights, str) and self.class_weights != "balanced":
            raise ValueError(
                f"class_weights: {self.class_weights!r}; use balanced, a list of numbers or null"
            )
        if (
            isinstance(self.class_weight_power, bool)
            or not isinstance(self.class_weight_power, (int, float))
            or not 0 < self.class_weight_power <= 1
        ):
            raise ValueError(
                f"class_weight_power: an exponent in (0, 1], got {self.class_weight_power!r}"
            )
        if isinstance(self.class_weights, list) and any(w < 0 for w in self.class_weights):
            raise ValueError(f"class_weights: must be >= 0, got {self.class_weights}")
        self.appearance_config().validate("appearance")
        if isinstance(self.ema_decay, bool) or not 0.0 <= self.ema_decay < 1.0:
            raise ValueError(f"ema_decay: must be in [0, 1), got {self.ema_decay!r}")
        if (
            isinstance(self.val_every, bool)
            or not isinstance(self.val_every, int)
            or self.val_every < 1
        ):
            raise ValueError(f"val_every: a number of epochs >= 1, got {self.val_every!r}")
        if isinstance(self.members, bool) or not isinstance(self.members, int) or self.members < 1:
            raise ValueError(f"members: a number of networks >= 1, got {self.members!r}")
        if self.calibration is not None and self.calibration not in CALIBRATIONS:
            raise ValueError(
                f"calibration: {self.calibration!r}; use {', '.join(CALIBRATIONS)} or null"
            )
        if self.dice_weight < 0:
            raise ValueError(f"dice_weight: must be >= 0, got {self.dice_weight}")
        if not _DEVICE.match(self.device):
            raise ValueError(f"device: {self.device!r} is not one of auto, cpu, cuda, cuda:N")
        if self.num_workers < 0:
            raise ValueError(f"num_workers: must be >= 0, got {self.num_workers}")
        if self.jobs != "auto" and (
            isinstance(self.jobs, bool) or not isinstance(self.jobs, int) or self.jobs < 1
        ):
            raise ValueError(
                f"jobs: expected auto or a positive number of processes, got {self.jobs!r}"
            )


def check_network_names(arch: str, encoder: str) -> None:
    """Raise ValueError (naming `arch` or `encoder`) unless segmentation_models_pytorch knows
    the architecture and the encoder ("tu-" timm encoders are left to smp).

    It imports smp, about a second on two CPU cores, so it is not part of `validate`, which every
    stage runs on the whole of params.yaml: the stages that build the network call it, and so does
    `prepare`, the first stage of a fresh run (mmif.config.load_params(check_names=...)).
    """
    import segmentation_models_pytorch as smp

    archs = smp.MODEL_ARCHITECTURES_MAPPING
    if arch.lower() not in archs:
        raise ValueError(f"arch: unknown architecture {arch!r}; one of {', '.join(sorted(archs))}")
    if encoder not in smp.encoders.get_encoder_names() and not encoder.startswith("tu-"):
        raise ValueError(
            f"encoder: unknown encoder {encoder!r}; e.g. resnet18, resnet34, mobilenet_v2"
        )


#: SegmentConfig keys that belong to the section (shared by every training of the task)
SHARED_KEYS = (
    "arch",
    "encoder",
    "encoder_weights",
    "encoder_depth",
    "decoder_channels",
    "device",
    "num_workers",
    "jobs",
    "amp",
)


@dataclass
class SegmentSection:
    """The `segment:` section of params.yaml: a protocol, shared settings and three schedules.

    protocol: frozen | finetune | retrain (mmif.protocol; README "Protocols").
    arch, encoder, encoder_depth, decoder_channels: the network of every training
        (SegmentConfig).
    encoder_weights: a local encoder state dict every network starts from (the shared model of
        frozen / finetune too); None: random initialisation. Never downloaded.
    device, num_workers, jobs, amp: as in SegmentConfig, for every training and evaluation.
    base: SegmentConfig settings of the shared model (frozen, finetune), trained once per seed on
        the train split's infrared and visible images as separate samples.
    finetune: overrides on top of `base` for each method's fine-tuning from the shared model.
    retrain: SegmentConfig settings of each method's own from-scratch training (retrain).
    """

    protocol: str = "frozen"
    arch: str = "Unet"
    encoder: str = "resnet18"
    encoder_weights: str | None = None
    encoder_depth: int = 5
    decoder_channels: list[int] | None = None
    device: str = "auto"
    num_workers: int = 0
    jobs: int | str = "auto"
    amp: bool = True
    base: dict[str, Any] = field(default_factory=dict)
    finetune: dict[str, Any] = field(default_factory=dict)
    retrain: dict[str, Any] = field(default_factory=dict)

    def validate(self) -> None:
        check_protocol(self.protocol)
        if "members" in self.finetune:
            raise ValueError(
                "finetune.members: a fine-tuned model keeps the networks of its shared model; "
                "set segment.base.members instead and remove this key"
            )
        for which in SCHEDULES:
            self.schedule(which)

    def check_names(self) -> None:
        """`check_network_names` for the network every training shares (arch and encoder are
        shared keys, so no schedule can change them)."""
        check_network_names(self.arch, self.encoder)

    def schedule(self, which: str) -> SegmentConfig:
        """The SegmentConfig of one training: "base", "finetune" or "retrain"."""
        common = {k: getattr(self, k) for k in SHARED_KEYS}
        schedules = {"base": self.base, "finetune": self.finetune, "retrain": self.retrain}
        return build_schedule(SegmentConfig, common, schedules, which, "params.yaml:segment")

    def evaluation(self) -> SegmentConfig:
        """Settings of a frozen evaluation (the shared model's: its batch size)."""
        return self.schedule("base")
