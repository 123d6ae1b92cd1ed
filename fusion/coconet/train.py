"""Two-stage CoCoNet training from a prepared dataset, checkpointed every epoch and resumable.

Stage 1 trains with the fidelity loss (20 L_ssim + L_mse, self-adaptive weights) on random
patches of every training pair; stage 2 fine-tunes with the contrastive loss added, on patches
that contain salient targets. Each stage has its own epochs, batch size, learning rate and Adam.

Salient masks come from, in order: `<data>/train/salient/` masks, else boxes of the YOLO labels
(the configured target classes, all classes by default), else infrared saliency (bright, blurred
infrared pixels). The source used is logged and recorded in the train metrics.

Outputs in `out_dir` (each written atomically):
    coconet.pt           {"model": state_dict, "config": dict, "vgg_pretrained": bool, ...}
    loss_curve.csv       step,epoch,stage,loss,loss_ssim,loss_mse,loss_con (one row per step)
    train_metrics.json   vgg_pretrained, stage1_final_loss, stage2_final_loss, epochs, n_patches,
                         salient_source, seconds (+ a few details)
    checkpoints/last.pt  model, optimiser, stage, epoch, config, ... after every epoch
All `.pt` files hold only tensors and primitive containers: `torch.load(..., weights_only=True)`.
Patches depend only on (seed, stage, epoch), so on CPU a resumed run reproduces an
uninterrupted one exactly.
"""

from __future__ import annotations

import csv
import hashlib
import io
import logging
import math
import time
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import torch
from scipy.ndimage import gaussian_filter

from fusion.checkpoints import TrainingFingerprint, flat_params, load_resumable
from fusion.coconet.config import TRAINING_KEYS, CoCoNetConfig
from fusion.coconet.losses import adaptive_weights, contrastive_loss, fidelity_loss
from fusion.coconet.network import CoCoNet, flush_denormals
from fusion.coconet.vgg import N_RELU_CONVS, VGG19Relu, load_vgg19_grey
from mmif.errors import ConfigError, InputError, MissingInputError
from mmif.io import ImageError, read_image, save_torch, write_image, write_json, write_text
from mmif.labels import read_yolo_file, salient_from_boxes
from mmif.layout import Manifest, list_pairs
from mmif.logging_utils import progress_bar
from mmif.runtime import code_fingerprint, resolve_device

log = logging.getLogger(__name__)

CHECKPOINT_FORMAT = "coconet-train-v3"
WEIGHTS_FORMAT = "coconet-v1"
CURVE_COLUMNS = ("step", "epoch", "stage", "loss", "loss_ssim", "loss_mse", "loss_con")


# ----------------------------------------------------------------------------- data


@dataclass
class TrainingData:
    """Training pairs held in memory as uint8 (infrared, visible luminance) plus salient masks."""

    stems: list[str]
    ir: list[np.ndarray]
    vis: list[np.ndarray]
    salient: list[np.ndarray]  # bool H x W
    salient_source: str
    _salient_pixels: dict[int, np.ndarray] = field(default_factory=dict, repr=False)
    _fingerprint: str | None = field(default=None, repr=False)

    def __len__(self) -> int:
        return len(self.stems)

    def salient_pixels(self, i: int) -> np.ndarray:
        """Flat indices of the salient pixels of pair i (cached)."""
        if i not in self._salient_pixels:
            self._salient_pixels[i] = np.flatnonzero(self.salient[i])
        return self._salient_pixels[i]

    def fingerprint(self) -> str:
        """Identifies the training set (stems, pixels and salient masks) so a checkpoint is not
        continued on other data (e.g. a dataset re-rendered with the same names and sizes)."""
        if self._fingerprint is not None:
            return self._fingerprint
        h = hashlib.sha256()
        for stem, ir, vis, mask in zip(self.stems, self.ir, self.vis, self.salient, strict=True):
            h.update(f"{stem}:{ir.shape[0]}x{ir.shape[1]};".encode())
            for a in (ir, vis, mask):
                h.update(np.ascontiguousarray(a).tobytes())
        h.update(self.salient_source.encode())
        self._fingerprint = h.hexdigest()[:16]
        return self._fingerprint


def load_training_data(data_root: Path, cfg: CoCoNetConfig, split: str = "train") -> TrainingData:
    """Read the pairs of one split of a prepared dataset (mmif.layout) with salient masks."""
    pairs = list_pairs(data_root, split)
    if not pairs:
        raise MissingInputError(
            f"{Path(data_root) / split}: no training pairs (ir/, vis/); run `mmif prepare` first"
        )
    if any(p.salient is not None for p in pairs):
        source = "salient"
    elif any(p.labels is not None for p in pairs):
        source = "labels"
    else:
        source = "ir_saliency"
    classes = _target_class_ids(data_root, cfg.salient_classes) if source == "labels" else None

    stems, irs, viss, masks = [], [], [], []
    skipped, missing = [], 0
    for p in progress_bar(pairs, desc="coconet: load training pairs", unit="pair", leave=False):
        ir = read_image(p.ir, mode="grey")
        vis = read_image(p.vis, mode="grey")  # BT.601 luminance of a colour visible image
        if ir.shape != vis.shape:
            raise ImageError(
                f"{p.ir} is {ir.shape[1]}x{ir.shape[0]} but {p.vis} is {vis.shape[1]}x{vis.shape[0]}; "
                "re-run `mmif prepare` to register the pair"
            )
        if min(ir.shape) < cfg.patch_size:
            skipped.append(p.stem)
            continue
        if source == "salient":
            if p.salient is None:
                missing += 1
                mask = np.zeros(ir.shape, dtype=bool)
            else:
                mask = read_image(p.salient, mode="grey") > 127
                if mask.shape != ir.shape:
                    raise ImageError(
                        f"{p.salient}: size {mask.shape[::-1]} differs from {p.ir} {ir.shape[::-1]}; re-run `mmif prepare`"
                    )
        elif source == "labels":
            mask = salient_from_labels(p.labels, ir.shape, classes, ir)
        else:
            mask = salient_from_infrared(ir, cfg.saliency_std)
        stems.append(p.stem)
        irs.append(ir)
        viss.append(vis)
        masks.append(mask)
    if skipped:
        log.warning(
            "%d training pairs smaller than patch_size %d skipped (e.g. %s)",
            len(skipped),
            cfg.patch_size,
            skipped[0],
        )
    if not stems:
        raise ImageError(
            f"{Path(data_root) / split}: every pair is smaller than patch_size {cfg.patch_size}; lower it"
        )
    if missing:
        log.warning(
            "%d of %d training pairs have no salient mask; they count as having no target",
            missing,
            len(stems),
        )
    n_target = sum(bool(m.any()) for m in masks)
    log.info(
        "CoCoNet training data: %d pairs from %s; salient masks from %s (%d pairs with targets)",
        len(stems),
        Path(data_root) / split,
        {"salient": "salient/ masks", "labels": "YOLO labels", "ir_saliency": "infrared saliency"}[
            source
        ],
        n_target,
    )
    return TrainingData(stems, irs, viss, masks, source)


def _target_class_ids(data_root: Path, classes: list[str | int] | None) -> set[int] | None:
    if classes is None:
        return None
    names: list[str] = []
    if any(isinstance(c, str) for c in classes):
        names = Manifest.load(data_root).det_classes
    ids = set()
    for c in classes:
        if isinstance(c, int):
            ids.add(c)
        elif c in names:
            ids.add(names.index(c))
        else:
            raise ConfigError(
                f"fusion.coconet.salient_classes: '{c}' is not a detection class of {data_root} "
                f"(classes: {', '.join(names) or 'none'})"
            )
    return ids


def salient_from_labels(
    label_file: Path | None,
    shape: tuple[int, int],
    classes: set[int] | None = None,
    ir: np.ndarray | None = None,
    mode: str = "refined",
) -> np.ndarray:
    """Boolean H x W salient mask from the YOLO boxes ("cls cx cy w h", normalised) of target
    classes: with `ir` (uint8 H x W) and mode "refined", the warm part of each box
    (preparation.annotations.salient_from_boxes), else the whole boxes.

    classes: class ids that count as targets; None = all. A missing file means no targets.
    """
    h, w = shape
    if label_file is None:
        return np.zeros((h, w), dtype=bool)
    rows = read_yolo_file(label_file)
    ids = sorted({r[0] for r in rows} if classes is None else classes)
    return salient_from_boxes(rows, ids, (w, h), ir, mode) > 0


def salient_from_infrared(ir: np.ndarray, k: float = 1.0, sigma: float = 2.0) -> np.ndarray:
    """Infrared saliency: pixels of the blurred image brighter than its mean + k * std.

    Warm targets (people, engines) are the bright, compact regions of thermal images; a flat
    image has none.
    """
    smooth = gaussian_filter(ir.astype(np.float32), sigma)
    std = float(smooth.std())
    if std < 1e-6:
        return np.zeros(ir.shape, dtype=bool)
    return smooth > smooth.mean() + k * std


def sample_patches(data: TrainingData, cfg: CoCoNetConfig, stage: int, epoch: int) -> np.ndarray:
    """Patch specs (pair, top, left, flip_h, flip_v) for one epoch, shuffled; N x 5 int64.

    Seeded by (seed, stage, epoch) only, so a resumed run draws the same patches. Stage 2 draws
    from pairs with salient targets, each patch containing a random salient pixel; any other
    stage number draws like stage 1 (anywhere in every pair), from its own random stream.
    """
    rng = np.random.default_rng([cfg.seed, stage, epoch])
    ps = cfg.patch_size
    specs = []
    for i in range(len(data)):
        h, w = data.ir[i].shape
        n = cfg.patches_per_image
        if stage != 2:  # stage 1 (and the BatchNorm recalibration stream): anywhere
            tops = rng.integers(0, h - ps + 1, n)
            lefts = rng.integers(0, w - ps + 1, n)
        else:
            pix = data.salient_pixels(i)
            if pix.size == 0:
                continue
            ys, xs = np.divmod(pix[rng.integers(0, pix.size, n)], w)
            tops = np.clip(ys - rng.integers(0, ps, n), 0, h - ps)
            lefts = np.clip(xs - rng.integers(0, ps, n), 0, w - ps)
        flips = rng.integers(0, 2, (n, 2)) if cfg.flips else np.zeros((n, 2), dtype=np.int64)
        specs.append(np.column_stack([np.full(n, i), tops, lefts, flips]))
    if not specs:
        return np.zeros((0, 5), dtype=np.int64)
    out = np.concatenate(specs).astype(np.int64)
    return out[rng.permutation(len(out))]


def extract_patches(data: TrainingData, specs: np.ndarray, patch_size: int) -> torch.Tensor:
    """N x 3 x P x P float tensor in [0, 1]: infrared, visible luminance, salient mask."""
    out = np.empty((len(specs), 3, patch_size, patch_size), dtype=np.uint8)
    for j, (i, top, left, fh, fv) in enumerate(specs):
        window = (slice(top, top + patch_size), slice(left, left + patch_size))
        stack = np.stack(
            [
                data.ir[i][window],
                data.vis[i][window],
                data.salient[i][window].astype(np.uint8) * 255,
            ]
        )
        if fh:
            stack = stack[:, :, ::-1]
        if fv:
            stack = stack[:, ::-1, :]
        out[j] = stack
    return torch.from_numpy(out).float().div_(255.0)


def salient_overlay(ir: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """H x W x 3 uint8: the infrared image in grey with the salient pixels tinted red and their
    outline drawn in yellow (for a look at the masks training uses)."""
    from scipy import ndimage

    grey = np.repeat(ir[..., None].astype(np.float32), 3, axis=2)
    tinted = grey.copy()
    tinted[mask] = 0.5 * grey[mask] + 0.5 * np.array([255.0, 0.0, 0.0])
    edge = mask & ~ndimage.binary_erosion(mask, border_value=0)
    tinted[edge] = (255.0, 255.0, 0.0)
    return tinted.round().astype(np.uint8)


def save_salient_overlays(data: TrainingData, path: Path, n: int = 4, width: int = 320) -> None:
    """Write `n` overlays (evenly spaced over the pairs that have targets) side by side, each
    scaled to `width` pixels wide, as one PNG; nothing when no pair has a target."""
    from PIL import Image

    with_targets = [i for i, m in enumerate(data.salient) if m.any()]
    if not with_targets:
        return
    picks = [
        with_targets[round(k)]
        for k in np.linspace(0, len(with_targets) - 1, min(n, len(with_targets)))
    ]
    tiles = []
    for i in dict.fromkeys(picks):
        tile = Image.fromarray(salient_overlay(data.ir[i], data.salient[i]))
        tile = tile.resize((width, max(1, round(tile.height * width / tile.width))), Image.BILINEAR)
        tiles.append(np.asarray(tile))
    height = max(t.shape[0] for t in tiles)
    canvas = np.zeros((height, width * len(tiles) + 4 * (len(tiles) - 1), 3), dtype=np.uint8)
    for k, t in enumerate(tiles):
        canvas[: t.shape[0], k * (width + 4) : k * (width + 4) + width] = t
    write_image(path, canvas)
    log.info("salient masks of %d training pairs drawn in %s", len(tiles), path)


# ----------------------------------------------------------------------------- training


@dataclass
class _Progress:
    stage: int = 1
    stage_step: int = 0  # optimiser steps done in `stage`
    step: int = 0  # optimiser steps done in all stages
    seconds: float = 0.0
    curve: list[list[float]] = field(default_factory=list)
    patches: dict[int, int] = field(default_factory=lambda: {1: 0, 2: 0})  # patches seen


def build_model(cfg: CoCoNetConfig, device: torch.device) -> CoCoNet:
    """A freshly initialised CoCoNet, seeded by cfg.seed (the global RNG is left untouched)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(cfg.seed)
        model = CoCoNet(vgg_weights=cfg.vgg_weights, vgg_seed=cfg.seed)
    return model.to(device)


def _contrastive_features(model: CoCoNet, cfg: CoCoNetConfig, device: torch.device) -> VGG19Relu:
    # the loss's VGG19 shares the network's first eight convolutions (same source) and adds
    # conv4_1 .. conv5_1 from the same weights file, or the same seed when untrained
    state, pretrained = load_vgg19_grey(N_RELU_CONVS, cfg.vgg_weights, cfg.seed)
    if pretrained != model.vgg_pretrained:
        raise InputError(
            f"VGG19 weights: the network has vgg_pretrained={model.vgg_pretrained} but the loss would get "
            f"pretrained={pretrained}; keep the VGG19 weights file in place for the whole training"
        )
    state.update({k: v.detach().cpu() for k, v in model.vgg.state_dict().items()})
    return VGG19Relu(state).to(device=device, memory_format=torch.channels_last).eval()


def native_bfloat16(device: torch.device) -> bool:
    """Whether `device` computes bfloat16 convolutions natively (CUDA with bfloat16 support, or a
    CPU whose oneDNN has AVX512-BF16 / AMX kernels); elsewhere bfloat16 is emulated and slower."""
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    if device.type == "cpu":
        try:
            return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
        except (AttributeError, RuntimeError):
            return False
    return False


def training_autocast(cfg: CoCoNetConfig, device: torch.device) -> bool:
    """Whether training runs the networks under bfloat16 autocast: `amp` on CUDA with bfloat16,
    `amp_cpu` on a CPU with native bfloat16."""
    if device.type == "cuda":
        return cfg.amp and torch.cuda.is_bf16_supported()
    return device.type == "cpu" and cfg.amp_cpu and native_bfloat16(device)


def contrastive_dtype(cfg: CoCoNetConfig, device: torch.device) -> torch.dtype | None:
    """dtype of the contrastive loss's VGG19 passes (None: float32, no autocast)."""
    if cfg.contrastive_precision == "bfloat16" or (
        cfg.contrastive_precision == "auto" and native_bfloat16(device)
    ):
        return torch.bfloat16
    return None


def stage_steps(cfg: CoCoNetConfig, stage: int, n_patches: int) -> tuple[int, int]:
    """(steps per epoch, optimiser steps of the whole stage) for a stage with `n_patches` per epoch."""
    sc = cfg.stage1 if stage == 1 else cfg.stage2
    per_epoch = math.ceil(n_patches / sc.patches_per_step)
    if per_epoch == 0:
        return 0, 0
    return per_epoch, (sc.steps if sc.steps is not None else sc.epochs * per_epoch)


def batchnorm_layers(model: torch.nn.Module) -> list[torch.nn.modules.batchnorm._BatchNorm]:
    return [m for m in model.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]


@torch.no_grad()
def recalibrate_batchnorm(
    model: CoCoNet,
    data: TrainingData,
    cfg: CoCoNetConfig,
    n_patches: int,
    batch_size: int = 30,
    device: torch.device | None = None,
) -> int:
    """Recompute every BatchNorm's running mean and variance as exact averages over `n_patches`
    random patches drawn as in stage 1 (all pairs, anywhere in the image), for the model's
    current weights. The patches are seeded by cfg.seed alone. Returns the patches used.

    Train-mode forward passes without gradient, with momentum None (a cumulative average over
    the batches); the model's mode and momenta are restored afterwards.
    """
    device = device or next(model.parameters()).device
    layers = batchnorm_layers(model)
    if not layers or n_patches <= 0:
        return 0
    specs = []
    epoch = 0
    while sum(len(s) for s in specs) < n_patches:
        # stage index 0: a stream of patches of its own, apart from the training epochs
        specs.append(sample_patches(data, cfg, 0, epoch))
        epoch += 1
    specs = np.concatenate(specs)[:n_patches]
    was_training = model.training
    saved = [m.momentum for m in layers]
    for m in layers:
        m.reset_running_stats()
        m.momentum = None
    model.train()
    try:
        with flush_denormals():
            for s in range(0, len(specs), batch_size):
                batch = extract_patches(data, specs[s : s + batch_size], cfg.patch_size).to(device)
                model(batch[:, 0:1], batch[:, 1:2])
    finally:
        for m, momentum in zip(layers, saved, strict=True):
            m.momentum = momentum
        model.train(was_training)
    return len(specs)


def train_coconet(
    data_root: Path,
    out_dir: Path,
    cfg: CoCoNetConfig,
    *,
    checkpoint_dir: Path | None = None,
    progress: bool = True,
) -> Path:
    """Train CoCoNet on `<data_root>/train` and write its outputs to `out_dir`; returns coconet.pt.

    checkpoint_dir: where `last.pt` lives (default `out_dir/checkpoints`); a compatible
    checkpoint there is resumed from its last saved step (same data, same training settings;
    stage epochs or steps may have grown). See the module docstring for the files written.
    """
    started = time.perf_counter()
    data_root, out_dir = Path(data_root), Path(out_dir)
    ckpt_path = Path(checkpoint_dir or out_dir / "checkpoints") / "last.pt"
    device = resolve_device(cfg.device, "fusion.coconet.device")
    use_amp = training_autocast(cfg, device)
    con_dtype = contrastive_dtype(cfg, device)
    if device.type == "cpu" and cfg.amp_cpu:
        log.info(
            "CoCoNet trains under bfloat16 autocast (fusion.coconet.amp_cpu; native on this CPU)"
            if use_amp
            else "fusion.coconet.amp_cpu: this CPU has no native bfloat16; training in float32"
        )

    data = load_training_data(data_root, cfg)
    save_salient_overlays(data, out_dir / "salient_overlays.png")
    model = build_model(cfg, device)
    log.info(
        "CoCoNet on %s: %d trainable parameters, VGG19 %s",
        device,
        sum(p.numel() for p in model.trainable_parameters()),
        "ImageNet" if model.vgg_pretrained else "untrained (no weights found)",
    )
    n_stage2 = len(sample_patches(data, cfg, 2, 0))
    budgets = {
        1: stage_steps(cfg, 1, len(data) * cfg.patches_per_image),
        2: stage_steps(cfg, 2, n_stage2),
    }
    # one Adam for both stages: stage 2 continues stage 1's moments (as published); only the
    # learning rate changes between stages
    optimizer = torch.optim.Adam(model.trainable_parameters(), lr=cfg.stage1.lr)
    prog = _Progress()
    fingerprint = training_fingerprint(cfg, data, model.vgg_pretrained)
    ckpt = load_resumable(
        ckpt_path,
        fingerprint,
        name="coconet",
        device=device,
        budget_check=partial(_budget_refusal, budgets=budgets),
    )
    if ckpt is not None:
        model.load_state_dict(ckpt["model"])
        optimizer.load_state_dict(ckpt["optimizer"])
        prog = _Progress(
            ckpt["stage"],
            ckpt["stage_step"],
            ckpt["step"],
            ckpt["seconds"],
            [list(r) for r in ckpt["curve"]],
            {int(k): int(v) for k, v in ckpt["patches"].items()},
        )
        log.info(
            "resuming from %s: stage %d, %d steps done", ckpt_path, prog.stage, prog.stage_step
        )
    prior_seconds = prog.seconds

    for stage, sc in ((1, cfg.stage1), (2, cfg.stage2)):
        per_epoch, total = budgets[stage]
        if stage < prog.stage:
            continue
        if stage == 2 and n_stage2 == 0:
            if sc.epochs or sc.steps:
                log.warning(
                    "stage 2 skipped: no training pair has a salient target (source: %s)",
                    data.salient_source,
                )
            break
        done = prog.stage_step if stage == prog.stage else 0
        if done >= total:
            continue
        for group in optimizer.param_groups:
            group["lr"] = sc.lr
        features = _contrastive_features(model, cfg, device) if stage == 2 else None
        model.train()
        bar = progress_bar(total=total, initial=done, desc=f"coconet stage {stage}", unit="step", disable=not progress, leave=False)  # fmt: skip
        while done < total:
            t_chunk = time.perf_counter()
            epoch, first = divmod(done, per_epoch)
            specs = sample_patches(data, cfg, stage, epoch)
            last = min(per_epoch, first + total - done)
            losses = []
            for s in range(first, last):
                batch = extract_patches(
                    data,
                    specs[s * sc.patches_per_step : (s + 1) * sc.patches_per_step],
                    cfg.patch_size,
                )
                with flush_denormals():  # the backward pass produces subnormals too
                    values = _train_step(
                        model, optimizer, batch.to(device), cfg, features, use_amp, con_dtype
                    )
                done += 1
                prog.step += 1
                prog.patches[stage] += len(batch)
                prog.curve.append([prog.step, epoch + 1, stage, *values])
                losses.append(values[0])
                bar.update(1)
                bar.set_postfix(loss=f"{values[0]:.4f}")
            prog.stage, prog.stage_step = stage, done
            prog.seconds = prior_seconds + time.perf_counter() - started
            _save_checkpoint(ckpt_path, model, optimizer, prog, cfg, fingerprint)
            _write_curve(out_dir / "loss_curve.csv", prog.curve)
            log.info(
                "stage %d epoch %d: mean loss %.4f over %d steps (%.1f s); %d of %d steps done",
                stage, epoch + 1, float(np.mean(losses)), len(losses), time.perf_counter() - t_chunk, done, total,
            )  # fmt: skip
        bar.close()
        prog.stage, prog.stage_step = stage + 1, 0

    if cfg.bn_recalibration:
        n = recalibrate_batchnorm(
            model, data, cfg, cfg.bn_recalibration, cfg.stage1.patches_per_step
        )
        log.info("BatchNorm statistics recomputed on %d random stage-1 patches", n)
    prog.seconds = prior_seconds + time.perf_counter() - started
    weights = out_dir / "coconet.pt"
    save_torch(
        {
            "format": WEIGHTS_FORMAT,
            "model": {k: v.detach().cpu() for k, v in model.state_dict().items()},
            "config": cfg.to_dict(),
            "vgg_pretrained": model.vgg_pretrained,
        },
        weights,
    )
    _write_curve(out_dir / "loss_curve.csv", prog.curve)
    metrics = {
        "vgg_pretrained": model.vgg_pretrained,
        "stage1_final_loss": _final_loss(prog.curve, 1),
        "stage2_final_loss": _final_loss(prog.curve, 2),
        "epochs": _epochs_run(prog.curve, 1) + _epochs_run(prog.curve, 2),
        "stage1_epochs": _epochs_run(prog.curve, 1),
        "stage2_epochs": _epochs_run(prog.curve, 2),
        "stage1_steps": _steps_run(prog.curve, 1),
        "stage2_steps": _steps_run(prog.curve, 2),
        "stage1_patches_seen": prog.patches[1],
        "stage2_patches_seen": prog.patches[2],
        "n_patches": len(data) * cfg.patches_per_image,
        "n_patches_stage2": n_stage2,
        "n_pairs": len(data),
        "salient_source": data.salient_source,
        "bn_recalibration_patches": cfg.bn_recalibration,
        "contrastive_dtype": str(con_dtype or torch.float32).replace("torch.", ""),
        "autocast_bfloat16": use_amp,
        "seconds": round(prog.seconds, 2),
        "device": str(device),
    }
    write_json(out_dir / "train_metrics.json", metrics)
    log.info(
        "CoCoNet trained: %s (%d + %d steps, %.0f s)",
        weights, metrics["stage1_steps"], metrics["stage2_steps"], prog.seconds,
    )  # fmt: skip
    return weights


def _train_step(
    model: CoCoNet,
    optimizer: torch.optim.Optimizer,
    batch: torch.Tensor,
    cfg: CoCoNetConfig,
    features: VGG19Relu | None,
    use_amp: bool,
    con_dtype: torch.dtype | None = None,
) -> list[float]:
    """One optimisation step; returns [loss, loss_ssim, loss_mse, loss_con (nan in stage 1)]."""
    ir, vis, mask = batch[:, 0:1], batch[:, 1:2], batch[:, 2:3]
    w_ssim, w_mse = adaptive_weights(ir, vis, cfg.c1, cfg.c2)
    # reduced precision (amp on CUDA, amp_cpu) for the networks only; SSIM and the loss ratios
    # stay float32
    autocast = torch.autocast(device_type=batch.device.type, dtype=torch.bfloat16, enabled=use_amp)
    with autocast:
        fused = model(ir, vis).float()
    loss, l_ssim, l_mse = fidelity_loss(fused, ir, vis, w_ssim, w_mse, cfg.ssim_weight)
    l_con = None
    if features is not None:
        with autocast:
            l_con = contrastive_loss(
                fused, ir, vis, mask, features, cfg.n_negatives, dtype=con_dtype
            )
        loss = loss + cfg.lambda_con * l_con
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    values = [loss, l_ssim, l_mse] + ([l_con] if l_con is not None else [])
    out = torch.stack([v.detach().float() for v in values]).tolist()  # one device sync
    return out + ([float("nan")] if l_con is None else [])


def _final_loss(curve: list[list[float]], stage: int) -> float | None:
    rows = [r for r in curve if r[2] == stage]
    if not rows:
        return None
    last = max(r[1] for r in rows)
    return round(float(np.mean([r[3] for r in rows if r[1] == last])), 6)


def _epochs_run(curve: list[list[float]], stage: int) -> int:
    return int(max((r[1] for r in curve if r[2] == stage), default=0))


def _steps_run(curve: list[list[float]], stage: int) -> int:
    return sum(1 for r in curve if r[2] == stage)


# ----------------------------------------------------------------------------- files


def _save_checkpoint(
    path: Path,
    model: CoCoNet,
    optimizer: torch.optim.Optimizer,
    prog: _Progress,
    cfg: CoCoNetConfig,
    fingerprint: TrainingFingerprint,
) -> None:
    save_torch(
        {
            "fingerprint": fingerprint.to_dict(),
            "model": model.state_dict(),
            "optimizer": optimizer.state_dict(),
            "stage": prog.stage,
            "stage_step": prog.stage_step,
            "step": prog.step,
            "patches": {str(k): v for k, v in prog.patches.items()},
            "seconds": prog.seconds,
            "curve": prog.curve,
            "config": cfg.to_dict(),
        },
        path,
    )


def training_fingerprint(
    cfg: CoCoNetConfig, data: TrainingData, vgg_pretrained: bool
) -> TrainingFingerprint:
    """What a checkpoint must match to be continued (`fusion.checkpoints`): the data, the code,
    the parameters of `TRAINING_KEYS` and whether VGG19 had its ImageNet weights."""
    params = flat_params(cfg.to_dict(), TRAINING_KEYS)
    params["vgg_pretrained"] = vgg_pretrained
    return TrainingFingerprint(
        format=CHECKPOINT_FORMAT,
        data=data.fingerprint(),
        code=code_fingerprint("fusion.coconet"),
        params=params,
    )


def _budget_refusal(ckpt: dict[str, Any], budgets: dict[int, tuple[int, int]]) -> str | None:
    """Why a checkpoint cannot be continued under the stage budgets (None: it can)."""
    stage, done = ckpt["stage"], ckpt["stage_step"]
    if stage == 1 and done > budgets[1][1]:
        return f"it holds {done} stage-1 steps, more than the {budgets[1][1]} configured"
    if stage == 2:
        if sum(1 for r in ckpt["curve"] if r[2] == 1) != budgets[1][1]:
            return "the stage-1 budget changed after stage 2 had started"
        if done > budgets[2][1]:
            return f"it holds {done} stage-2 steps, more than the {budgets[2][1]} configured"
    return None


def _write_curve(path: Path, rows: list[list[float]]) -> None:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(CURVE_COLUMNS)
    for step, epoch, stage, *losses in rows:
        writer.writerow(
            [
                int(step),
                int(epoch),
                int(stage),
                *("" if math.isnan(v) else f"{v:.6g}" for v in losses),
            ]
        )
    write_text(path, buf.getvalue())
