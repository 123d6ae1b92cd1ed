"""Train segmentation networks and score them on a method's fused test images, per protocol.

- `train_and_evaluate` (protocol retrain): trains on one method's fused `train` split, keeps
  the epoch with the best `val` mIoU (the last epoch when there is no val split, or with
  `select_on_val: false`), scores that model on `test`.
- `train_base` (frozen, finetune): the shared segmenter of a seed, trained on the train split's
  infrared and visible images as separate samples; writes model.pt, curves.csv and metrics.json
  to models/segment_base/seed_<s>/ (and model_<k>.pt, curves_<k>.csv for the further networks
  of a model of `members` > 1, whose class probabilities are averaged: segmentation.model.Ensemble).
- `evaluate_frozen` (frozen): a shared segmenter scores one method's fused test images.
- `finetune_and_evaluate` (finetune): a shared segmenter fine-tuned on one method's fused train
  split (the epoch kept as in training: `select_on_val`), then scored on its test split.

With `calibration: class_shares` every trained model gets one score offset per class, fit on
the val split after training (segmentation.calibration); the shared segmenter's offsets are
stored in its metrics.json and applied by `evaluate_frozen`.

The scoring functions write the files of docs/CONTRACTS.md (`segment/<method>/seed_<s>`):
metrics.json, confusion.npz and curves.csv.

Loss: cross-entropy + dice_weight * Dice, both ignoring 255. Optimiser: AdamW with a cosine
learning-rate decay over all steps. Mixed precision on CUDA only. With a fixed seed a CPU run is
deterministic (the same seed twice gives identical metrics); CUDA runs are close but not bitwise
equal, because some cuDNN kernels are not deterministic.

Several GPUs (DDP): start the same entry point under torchrun, e.g.

    torchrun --standalone --nproc_per_node=4 -m mmif.cli segment ...

torchrun sets WORLD_SIZE, RANK and LOCAL_RANK; `train_and_evaluate` then joins the process group
(NCCL on CUDA, gloo on CPU; it also uses a group the caller has already started), puts process
k on cuda:k, splits the training images with a DistributedSampler, synchronises BatchNorm and
averages gradients. `batch_size` is per process, so the effective batch is
batch_size x nproc_per_node (raise lr accordingly if you want the same schedule). Only rank 0
validates, tests and writes files; every rank returns rank 0's metrics; train_loss is the mean
over all processes. Without torchrun the
default path is a single process, on CPU or one GPU.
"""

from __future__ import annotations

import copy
import io
import json
import logging
import math
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from torch import nn
from torch.utils.data import DataLoader, DistributedSampler

from mmif.augment import Appearance
from mmif.errors import NoTaskLabels
from mmif.io import write_bytes, write_json, write_text
from mmif.iou import iou_from_confusion, mean_iou
from mmif.layout import IGNORE_INDEX, Manifest
from mmif.logging_utils import progress_bar
from mmif.runtime import machine_description, resolve_device
from segmentation.calibration import Calibrated, collect_scores, fit_class_offsets
from segmentation.config import SegmentConfig
from segmentation.data import (
    Batch,
    Sample,
    SegmentationDataset,
    collate,
    find_samples,
    read_mask,
    source_samples,
)
from segmentation.evaluate import Evaluation, evaluate
from segmentation.model import as_one_model, build_model

log = logging.getLogger(__name__)

#: weights file of a shared (base) segmenter in models/segment_base/seed_<s>/
BASE_WEIGHTS = "model.pt"


class SegmentationLoss(nn.Module):
    """Cross-entropy + dice_weight * multiclass Dice on logits B x C x H x W and targets B x H x W
    (255 ignored), computed in float32 even under autocast. class_weights (C,) weight the
    cross-entropy per true class (None: unweighted)."""

    def __init__(self, dice_weight: float = 1.0, class_weights: torch.Tensor | None = None):
        super().__init__()
        from segmentation_models_pytorch.losses import DiceLoss

        self.ce = nn.CrossEntropyLoss(weight=class_weights, ignore_index=IGNORE_INDEX)
        self.dice = DiceLoss(mode="multiclass", ignore_index=IGNORE_INDEX)
        self.dice_weight = dice_weight

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        logits = logits.float()
        loss = self.ce(logits, target)
        if self.dice_weight:
            loss = loss + self.dice_weight * self.dice(logits, target)
        return loss


def class_weights(cfg: SegmentConfig, samples: list[Sample], n_classes: int) -> torch.Tensor | None:
    """Cross-entropy weights of `cfg.class_weights`: None, explicit, or "balanced".

    "balanced": (median class frequency / class frequency) ** cfg.class_weight_power over the
    training masks' pixels (the square root by default), clipped to [0.2, 10] and normalised to
    a pixel-weighted mean of 1, so thin classes (lane markings, curbs, bicycle frames) are not
    drowned by the background. A class without pixels gets the largest weight.
    """
    spec = cfg.class_weights
    if spec is None:
        return None
    if isinstance(spec, list):
        if len(spec) != n_classes:
            raise ValueError(
                f"segment class_weights: {len(spec)} weights for {n_classes} classes (seg_classes)"
            )
        return torch.tensor(spec, dtype=torch.float32)
    counts = np.zeros(n_classes, dtype=np.float64)
    for sample in dict.fromkeys(s.mask for s in samples):
        mask = read_mask(sample, n_classes)
        counts += np.bincount(mask[mask != IGNORE_INDEX].ravel(), minlength=n_classes)[:n_classes]
    freq = counts / max(counts.sum(), 1.0)
    present = freq > 0
    median = float(np.median(freq[present])) if present.any() else 1.0
    weights = np.full(n_classes, 10.0)
    power = float(cfg.class_weight_power)
    weights[present] = np.clip((median / freq[present]) ** power, 0.2, 10.0)
    weights /= float((weights * freq).sum()) if present.any() else 1.0
    log.info(
        "cross-entropy class weights (balanced, power %g): %s",
        power,
        ", ".join(f"{w:.2f}" for w in weights),
    )
    return torch.tensor(weights, dtype=torch.float32)


def make_loader(
    samples: list[Sample],
    n_classes: int,
    cfg: SegmentConfig,
    seed: int,
    train: bool,
    sampler: Any = None,
) -> DataLoader:
    """A DataLoader of `Batch`es; training loaders shuffle with a generator seeded by `seed`."""
    ds = SegmentationDataset(
        samples,
        n_classes,
        train=train,
        seed=seed,
        scale_range=(cfg.scale_min, cfg.scale_max),
        hflip=cfg.hflip,
        vflip=cfg.vflip,
        crop_size=cfg.crop_size,
        appearance=cfg.appearance_config() if train else None,
    )
    n_local = len(ds) if sampler is None else len(sampler)
    return DataLoader(
        ds,
        batch_size=cfg.batch_size,
        shuffle=train and sampler is None,
        sampler=sampler,
        # a last batch of one image breaks BatchNorm on small crops; drop it when there are more
        drop_last=train and n_local > cfg.batch_size,
        num_workers=cfg.num_workers,
        collate_fn=collate,
        generator=torch.Generator().manual_seed(seed) if train else None,
    )


def train_epoch(
    model: nn.Module,
    loader: DataLoader,
    loss_fn: nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler,
    scaler: torch.amp.GradScaler,
    device: torch.device,
    amp: bool,
    desc: str = "train",
    ema: nn.Module | None = None,
) -> float:
    """One pass over `loader`; returns the mean training loss. The scheduler steps every batch,
    and so does `ema` (a torch.optim.swa_utils.AveragedModel of the model) when given."""
    model.train()
    total, n = 0.0, 0
    batch: Batch
    bar = progress_bar(loader, desc=desc, leave=False)
    for batch in bar:
        images = batch.images.to(device, non_blocking=True)
        masks = batch.masks.to(device, non_blocking=True)
        with torch.autocast(device_type=device.type, dtype=torch.float16, enabled=amp):
            logits = model(images)
        loss = loss_fn(logits, masks)
        optimizer.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        scaler.step(optimizer)
        scaler.update()
        scheduler.step()
        if ema is not None:
            ema.update_parameters(model.module if hasattr(model, "module") else model)
        total += float(loss.detach()) * len(batch)
        n += len(batch)
        bar.set_postfix(loss=f"{total / n:.4f}")
    return total / max(n, 1)


@dataclass
class _Dist:
    world: int = 1
    rank: int = 0
    owns_group: bool = False

    @property
    def main(self) -> bool:
        return self.rank == 0


def _setup_distributed(cfg: SegmentConfig) -> tuple[_Dist, torch.device]:
    """Join (or start) a torchrun process group when there is one; else a single process."""
    started = dist.is_available() and dist.is_initialized()
    if not started and int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return _Dist(), resolve_device(cfg.device, "segment.device")
    use_cuda = torch.cuda.is_available() and cfg.device != "cpu"
    owns = False
    if not started:
        dist.init_process_group(backend="nccl" if use_cuda else "gloo")
        owns = True
    d = _Dist(world=dist.get_world_size(), rank=dist.get_rank(), owns_group=owns)
    if use_cuda:
        local = int(os.environ.get("LOCAL_RANK", d.rank % torch.cuda.device_count()))
        torch.cuda.set_device(local)
        device = torch.device("cuda", local)
    else:
        device = torch.device("cpu")
    log.debug("distributed: rank %d of %d on %s", d.rank, d.world, device)
    return d, device


def _task_samples(
    fused_root: Path, data_root: Path, splits: tuple[str, ...]
) -> tuple[list[str], dict[str, list[Sample]]]:
    """Classes and the fused samples of `splits` (other splits empty); NoTaskLabels without masks."""
    manifest = Manifest.load(data_root)
    if not manifest.has_seg_masks or not manifest.seg_classes:
        raise NoTaskLabels(
            f"{data_root}: dataset '{manifest.name}' has no segmentation masks (manifest.json has_seg_masks=false)"
        )
    samples = {split: [] for split in ("train", "val", "test")}
    for split in splits:
        samples[split] = find_samples(fused_root, data_root, split)
    for split in ("train", "test"):
        if split in splits and not samples[split]:
            raise NoTaskLabels(
                f"{data_root}/{split}/masks: dataset '{manifest.name}' has no {split} masks, "
                f"so segmentation can be neither trained nor tested on it"
            )
    return list(manifest.seg_classes), samples


def train_and_evaluate(
    fused_root: Path, data_root: Path, out_dir: Path, cfg: SegmentConfig, seed: int
) -> dict:
    """Protocol retrain: train on `fused_root`'s train images, select on val, test, write out_dir.

    fused_root: data/fused/<method> (<split>/<stem>.png); data_root: data/prepared (masks and
    manifest.json); out_dir: results/segment/<method>/seed_<seed>.
    Returns the metrics.json content. mIoU is the mean IoU over the classes present in the test
    truth; a class absent from the test split gets IoU NaN (written as null in metrics.json, listed
    under "absent_classes") and is left out of the mean, see segmentation.evaluate.
    Raises NoTaskLabels when the dataset has no segmentation masks (or none in train or test),
    which the stage treats as "nothing to do" for that dataset.
    """
    fused_root, data_root, out_dir = Path(fused_root), Path(data_root), Path(out_dir)
    classes, samples = _task_samples(fused_root, data_root, ("train", "val", "test"))
    return _distributed(
        cfg,
        lambda ddp, device: _run(
            fused_root.name,
            out_dir,
            cfg,
            seed,
            classes,
            samples,
            ddp,
            device,
            facts={"protocol": "retrain"},
        ),
    )


def train_base(data_root: Path, out_dir: Path, cfg: SegmentConfig, seed: int) -> dict:
    """The shared segmenter of one seed (protocols frozen and finetune).

    Trains on the train split's infrared and visible images as separate samples with the same
    masks, keeps the best epoch on the val split (the last without one, or with `select_on_val:
    false`, the default's setting) and writes model.pt (a state dict), curves.csv and
    metrics.json to out_dir (models/segment_base/seed_<seed>).
    """
    data_root, out_dir = Path(data_root), Path(out_dir)
    manifest = Manifest.load(data_root)
    if not manifest.has_seg_masks or not manifest.seg_classes:
        raise NoTaskLabels(f"{data_root}: dataset '{manifest.name}' has no segmentation masks")
    samples = {
        split: source_samples(data_root, split, modality_labels=cfg.modality_labels)
        for split in ("train", "val")
    }
    samples["test"] = []
    if not samples["train"]:
        raise NoTaskLabels(f"{data_root}/train/masks: no training masks for the shared segmenter")
    facts = {
        "role": "shared segmenter (protocols frozen, finetune)",
        "trained_on": "train split, infrared and visible images as separate samples",
        "modality_labels": cfg.modality_labels,
        "appearance": cfg.appearance_config().facts(),
        "kept": "last epoch" if not cfg.select_on_val else "best val epoch",
        "ema_decay": cfg.ema_decay,
    }
    return _distributed(
        cfg,
        lambda ddp, device: _run(
            "shared model",
            out_dir,
            cfg,
            seed,
            list(manifest.seg_classes),
            samples,
            ddp,
            device,
            facts=facts,
            save_model=True,
        ),
    )


def load_base(base_dir: Path) -> tuple[list[dict[str, torch.Tensor]], dict]:
    """State dicts (one per member network) and facts of a shared segmenter folder
    (models/segment_base/seed_<s>)."""
    base_dir = Path(base_dir)
    weights, info = base_dir / BASE_WEIGHTS, base_dir / "metrics.json"
    if not weights.is_file() or not info.is_file():
        raise FileNotFoundError(
            f"{weights}: no shared segmenter here; run `mmif segment-base` (dvc repro segment_base) first"
        )
    facts = json.loads(info.read_text())
    n_members = int(facts.get("members", 1))
    states = []
    for k in range(n_members):
        path = base_dir / member_files(k)[0]
        if not path.is_file():
            raise FileNotFoundError(
                f"{path}: member {k + 1} of {n_members} of the shared segmenter is missing; "
                "rerun `mmif segment-base` (dvc repro segment_base)"
            )
        states.append(torch.load(path, map_location="cpu", weights_only=True))
    return states, {
        "base_encoder": facts.get("encoder"),
        "base_pretrained": facts.get("pretrained"),
        "base_epochs": facts.get("epochs"),
        "base_members": n_members,
        "base_appearance": Appearance.describe(facts.get("appearance")),
        "base_calibration": facts.get("calibration"),
        "base_class_offsets": facts.get("class_offsets"),
        "base_machine": facts.get("machine"),
    }


def evaluate_frozen(
    fused_root: Path,
    data_root: Path,
    base_dir: Path,
    out_dir: Path,
    cfg: SegmentConfig,
    seed: int,
    requested: str = "frozen",
) -> dict:
    """Protocol frozen: the shared segmenter of `seed` scores the method's fused test images.

    Only the fused test split is needed; curves.csv is empty (nothing is trained).
    """
    fused_root, data_root, out_dir = Path(fused_root), Path(data_root), Path(out_dir)
    classes, samples = _task_samples(fused_root, data_root, ("test",))
    states, base_facts = load_base(base_dir)
    device = resolve_device(cfg.device, "segment.device")
    members = []
    for state in states:
        member, _ = build_model(cfg, len(classes), quiet=True)
        member.load_state_dict(state)
        members.append(member)
    model = as_one_model(members)
    offsets = base_facts["base_class_offsets"]
    if offsets:
        missing = [c for c in classes if c not in offsets]
        if missing:
            raise ValueError(
                f"{Path(base_dir) / 'metrics.json'}: class_offsets has no value for "
                f"{', '.join(missing)}; rerun `mmif segment-base` (dvc repro segment_base)"
            )
        model = Calibrated(model, torch.tensor([offsets[c] for c in classes]))
    model = model.to(device)
    amp = cfg.amp and device.type == "cuda"
    loader = make_loader(samples["test"], len(classes), cfg, seed, train=False)
    result = evaluate(model, loader, len(classes), device, amp, desc="test")
    metrics = _metrics(result, classes, cfg, seed, True, 0, samples, device)
    metrics.update(
        protocol="frozen",
        **({"requested_protocol": requested} if requested != "frozen" else {}),
        epochs=0,
        **base_facts,
    )
    _write_outputs(out_dir, result, classes, [], metrics)
    log.info("%s seed %d (frozen): test mIoU %.4f", fused_root.name, seed, result.miou)
    return metrics


def finetune_and_evaluate(
    fused_root: Path,
    data_root: Path,
    base_dir: Path,
    out_dir: Path,
    cfg: SegmentConfig,
    seed: int,
) -> dict:
    """Protocol finetune: the shared segmenter of `seed` trained further on the method's fused
    train split for cfg.epochs (epoch kept per `select_on_val`), then scored on its test split."""
    fused_root, data_root, out_dir = Path(fused_root), Path(data_root), Path(out_dir)
    classes, samples = _task_samples(fused_root, data_root, ("train", "val", "test"))
    states, base_facts = load_base(base_dir)
    return _distributed(
        cfg,
        lambda ddp, device: _run(
            fused_root.name,
            out_dir,
            cfg,
            seed,
            classes,
            samples,
            ddp,
            device,
            init_states=states,
            facts={"protocol": "finetune", **base_facts},
        ),
    )


def _distributed(cfg: SegmentConfig, fn: Any) -> dict:
    ddp, device = _setup_distributed(cfg)
    try:
        return fn(ddp, device)
    finally:
        if ddp.owns_group:
            dist.destroy_process_group()


def member_seed(seed: int, member: int) -> int:
    """The training seed of member `member` of a model of `seed` (member 0 trains with `seed`
    itself, so a one-member model is the network the seed always gave)."""
    return seed + 1000 * member


@dataclass
class _Fitted:
    """One trained network and what its training recorded."""

    model: nn.Module
    curve: list[tuple[int, float, float]]
    best_epoch: int
    best_val: float
    pretrained: bool
    seed: int


def _fit(
    name: str,
    cfg: SegmentConfig,
    seed: int,
    classes: list[str],
    samples: dict[str, list[Sample]],
    ddp: _Dist,
    device: torch.device,
    init_state: dict[str, torch.Tensor] | None = None,
) -> _Fitted:
    """Train one network (from init_state when given) and keep the best val epoch (or the last,
    per `select_on_val`)."""
    n_classes = len(classes)
    amp = cfg.amp and device.type == "cuda"
    torch.manual_seed(seed)
    model, pretrained = build_model(cfg, n_classes, quiet=init_state is not None)
    if init_state is not None:
        model.load_state_dict(init_state)
        pretrained = True
    model.to(device)
    sampler = None
    train_model: nn.Module = model
    if ddp.world > 1:
        if device.type == "cuda":
            model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
        sampler = DistributedSampler(
            samples["train"], num_replicas=ddp.world, rank=ddp.rank, shuffle=True, seed=seed
        )
        train_model = nn.parallel.DistributedDataParallel(
            model, device_ids=[device.index] if device.type == "cuda" else None
        )

    train_loader = make_loader(samples["train"], n_classes, cfg, seed, train=True, sampler=sampler)
    val_loader = (
        make_loader(samples["val"], n_classes, cfg, seed, train=False) if samples["val"] else None
    )
    loss_fn = SegmentationLoss(cfg.dice_weight, class_weights(cfg, samples["train"], n_classes))
    optimizer = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(
        optimizer, T_max=cfg.epochs * len(train_loader)
    )
    scaler = torch.amp.GradScaler(device.type, enabled=amp)
    ema = None
    if cfg.ema_decay:
        from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

        ema = AveragedModel(
            model, multi_avg_fn=get_ema_multi_avg_fn(cfg.ema_decay), use_buffers=True
        )
    # the network that is validated, kept and tested: the weights' moving average when on
    scored: nn.Module = ema.module if ema is not None else model
    (log.info if ddp.main else log.debug)(
        "segment %s: %s/%s, %d classes, %d train / %d val / %d test images, %d epochs on %s%s, seed %d",
        name,
        cfg.arch,
        cfg.encoder,
        n_classes,
        len(samples["train"]),
        len(samples["val"]),
        len(samples["test"]),
        cfg.epochs,
        device,
        " (amp)" if amp else "",
        seed,
    )

    curve: list[tuple[int, float, float]] = []
    best_state, best_epoch, best_val = None, cfg.epochs, -math.inf
    for epoch in range(1, cfg.epochs + 1):
        start = time.perf_counter()
        train_loader.dataset.set_epoch(epoch)
        if sampler is not None:
            sampler.set_epoch(epoch)
        loss = train_epoch(
            train_model,
            train_loader,
            loss_fn,
            optimizer,
            scheduler,
            scaler,
            device,
            amp,
            desc=f"epoch {epoch}/{cfg.epochs}",
            ema=ema,
        )
        if ddp.world > 1:  # report the mean over all processes' batches
            total = torch.tensor([loss], dtype=torch.float64, device=device)
            dist.all_reduce(total)
            loss = float(total) / ddp.world
        val_miou = math.nan
        scored_now = epoch % cfg.val_every == 0 or epoch == cfg.epochs
        if ddp.main and val_loader is not None and scored_now:
            val_miou = evaluate(scored, val_loader, n_classes, device, amp, desc="val").miou
            if cfg.select_on_val and (best_state is None or val_miou > best_val):
                best_val, best_epoch = val_miou, epoch
                best_state = copy.deepcopy(scored.state_dict())
            elif not cfg.select_on_val:
                best_val = val_miou
        curve.append((epoch, loss, val_miou))
        if ddp.main:
            log.info(
                "epoch %d/%d: loss %.4f%s (%.1f s)",
                epoch,
                cfg.epochs,
                loss,
                "" if math.isnan(val_miou) else f", val mIoU {val_miou:.4f}",
                time.perf_counter() - start,
            )
    if ddp.main:
        if ema is not None:
            model.load_state_dict(scored.state_dict())  # the average is what is kept
        if best_state is not None:
            model.load_state_dict(best_state)
            log.info("best val mIoU %.4f at epoch %d", best_val, best_epoch)
    return _Fitted(model, curve, best_epoch, best_val, pretrained, seed)


def _run(
    name: str,
    out_dir: Path,
    cfg: SegmentConfig,
    seed: int,
    classes: list[str],
    samples: dict[str, list[Sample]],
    ddp: _Dist,
    device: torch.device,
    init_states: list[dict[str, torch.Tensor]] | None = None,
    facts: dict | None = None,
    save_model: bool = False,
) -> dict:
    """Train the model of `seed` (`cfg.members` networks, or one per state of init_states),
    then test and/or save it."""
    n_classes = len(classes)
    amp = cfg.amp and device.type == "cuda"
    starts = init_states or [None] * cfg.members
    started = time.perf_counter()
    fitted = [
        _fit(name, cfg, member_seed(seed, k), classes, samples, ddp, device, init_state=state)
        for k, state in enumerate(starts)
    ]
    first = fitted[0]
    facts = dict(facts or {})
    if len(fitted) > 1:
        facts.update(
            members=len(fitted),
            member_seeds=[f.seed for f in fitted],
            member_best_epochs=[f.best_epoch for f in fitted],
        )
    model = as_one_model([f.model for f in fitted])
    if ddp.main and cfg.calibration:
        model, calibration = _calibrate(model, cfg, classes, samples["val"], seed, device)
        facts.update(calibration)

    metrics: dict = {}
    if ddp.main:
        if save_model:
            metrics = {
                **facts,
                "n_train_images": len(samples["train"]),
                "n_val_images": len(samples["val"]),
                "best_epoch": first.best_epoch,
                "best_val_mIoU": _finite(first.best_val),
                "epochs": cfg.epochs,
                "arch": cfg.arch,
                "encoder": cfg.encoder,
                "pretrained": first.pretrained,
                "seed": seed,
                "seconds": round(time.perf_counter() - started, 1),
                "machine": machine_description(device),
            }
            _write_model(
                out_dir, [f.model for f in fitted], classes, [f.curve for f in fitted], metrics
            )
        if samples["test"]:
            test_loader = make_loader(samples["test"], n_classes, cfg, seed, train=False)
            result = evaluate(model, test_loader, n_classes, device, amp, desc="test")
            metrics = _metrics(
                result, classes, cfg, seed, first.pretrained, first.best_epoch, samples, device
            )
            metrics.update(facts)
            _write_outputs(out_dir, result, classes, first.curve, metrics)
            log.info(
                "test mIoU %.4f, pixel accuracy %.4f -> %s",
                result.miou,
                result.pixel_accuracy,
                out_dir,
            )
    if ddp.world > 1:
        shared = [metrics]
        dist.broadcast_object_list(shared, src=0)
        metrics = shared[0]
    return metrics


def _calibrate(
    model: nn.Module,
    cfg: SegmentConfig,
    classes: list[str],
    val: list[Sample],
    seed: int,
    device: torch.device,
) -> tuple[nn.Module, dict]:
    """`model` with class offsets fit on the `val` images (segmentation.calibration), and the
    facts metrics.json records; `model` unchanged when there are no val images."""
    if not val:
        log.warning(
            "segment: no val images to fit the %s calibration on; predicting with raw scores",
            cfg.calibration,
        )
        return model, {"calibration": None, "calibration_skipped": "no val images"}
    loader = make_loader(val, len(classes), cfg, seed, train=False)
    scores, labels = collect_scores(model, loader, device, seed=seed)
    offsets, ratio = fit_class_offsets(scores, labels, len(classes))
    log.info(
        "calibration (%s) on %d val pixels: class offsets %s",
        cfg.calibration,
        len(labels),
        ", ".join(f"{c} {float(o):+.3f}" for c, o in zip(classes, offsets, strict=True)),
    )
    return Calibrated(model, offsets).to(device), {
        "calibration": cfg.calibration,
        "class_offsets": {c: float(o) for c, o in zip(classes, offsets, strict=True)},
        "calibration_share_ratio": {
            c: _finite(float(r)) for c, r in zip(classes, ratio, strict=True)
        },
        "calibration_pixels": len(labels),
    }


def member_files(member: int) -> tuple[str, str]:
    """Weights and curve file names of one member in a shared-model folder (model.pt and
    curves.csv for the first, model_<k>.pt and curves_<k>.csv for the others)."""
    if member == 0:
        return BASE_WEIGHTS, "curves.csv"
    stem = Path(BASE_WEIGHTS).stem
    return f"{stem}_{member}.pt", f"curves_{member}.csv"


def _write_model(
    out_dir: Path,
    members: list[nn.Module],
    classes: list[str],
    curves: list[list[tuple[int, float, float]]],
    metrics: dict,
) -> None:
    for k, (model, curve) in enumerate(zip(members, curves, strict=True)):
        weights, curve_file = member_files(k)
        buf = io.BytesIO()
        torch.save({key: v.detach().cpu() for key, v in model.state_dict().items()}, buf)
        write_bytes(out_dir / weights, buf.getvalue())
        write_text(out_dir / curve_file, _curve_text(curve))
    write_json(out_dir / "metrics.json", {**metrics, "classes": classes})


def _finite(x: float) -> float | None:
    return None if x is None or not math.isfinite(x) else float(x)


def _metrics(
    result: Evaluation,
    classes: list[str],
    cfg: SegmentConfig,
    seed: int,
    pretrained: bool,
    best_epoch: int,
    samples: dict[str, list[Sample]],
    device: torch.device,
) -> dict:
    from_confusion = mean_iou(iou_from_confusion(result.confusion.sum(axis=0)))
    if not (math.isnan(from_confusion) and math.isnan(result.miou)) and not math.isclose(
        from_confusion, result.miou, abs_tol=1e-6
    ):
        log.error(
            "mIoU from the per-image confusion (%.6f) differs from torchmetrics (%.6f)",
            from_confusion,
            result.miou,
        )
    absent = [c for c, v in zip(classes, result.iou, strict=True) if math.isnan(v)]
    if absent:
        log.warning(
            "classes absent from the test split (IoU null, left out of mIoU): %s", ", ".join(absent)
        )
    return {
        "mIoU": _finite(result.miou),
        "pixel_accuracy": _finite(result.pixel_accuracy),
        "per_class": {
            c: {"IoU": _finite(float(v))} for c, v in zip(classes, result.iou, strict=True)
        },
        "absent_classes": absent,
        "n_test_images": len(result.stems),
        "n_train_images": len(samples["train"]),
        "n_val_images": len(samples["val"]),
        "best_epoch": best_epoch,
        "epochs": cfg.epochs,
        "arch": cfg.arch,
        "encoder": cfg.encoder,
        "pretrained": pretrained,
        "seed": seed,
        "device": device.type,
        "machine": machine_description(device),
    }


def _curve_text(curve: list[tuple[int, float, float]]) -> str:
    rows = ["epoch,train_loss,val_mIoU"] + [f"{e},{loss:.6f},{v:.6f}" for e, loss, v in curve]
    return "\n".join(rows) + "\n"


def _write_outputs(
    out_dir: Path,
    result: Evaluation,
    classes: list[str],
    curve: list[tuple[int, float, float]],
    metrics: dict,
) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    buf = io.BytesIO()
    np.savez_compressed(
        buf,
        stems=np.array(result.stems, dtype=str),
        confusion=result.confusion.astype(np.int64),
        class_names=np.array(classes, dtype=str),
    )
    write_bytes(out_dir / "confusion.npz", buf.getvalue())
    write_text(out_dir / "curves.csv", _curve_text(curve))
    write_json(out_dir / "metrics.json", metrics)
