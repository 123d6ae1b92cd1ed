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
import json
import logging
import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from scipy.ndimage import gaussian_filter

from fusion.coconet.config import TRAINING_KEYS, CoCoNetConfig
from fusion.coconet.losses import adaptive_weights, contrastive_loss, fidelity_loss
from fusion.coconet.network import CoCoNet, flush_denormals
from fusion.coconet.vgg import N_RELU_CONVS, VGG19Relu, load_vgg19_grey
from fusion.registry import resolve_device
from mmif.config import ConfigError
from mmif.data.annotations import read_yolo_file
from mmif.data.layout import Manifest, list_pairs
from mmif.errors import InputError, MissingInputError
from mmif.io import ImageError, read_image, write_text
from mmif.logging_utils import progress_bar
from mmif.runtime import code_fingerprint

log = logging.getLogger(__name__)

CHECKPOINT_FORMAT = "coconet-train-v1"
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
    """Read the pairs of one split of a prepared dataset (mmif.data.layout) with salient masks."""
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
            mask = salient_from_labels(p.labels, ir.shape, classes)
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
    label_file: Path | None, shape: tuple[int, int], classes: set[int] | None = None
) -> np.ndarray:
    """Boolean H x W mask covering the YOLO boxes ("cls cx cy w h", normalised) of target classes.

    classes: class ids that count as targets; None = all. A missing file means no targets.
    """
    h, w = shape
    mask = np.zeros((h, w), dtype=bool)
    if label_file is None:
        return mask
    for cls, cx, cy, bw, bh in read_yolo_file(label_file):
        if classes is not None and cls not in classes:
            continue
        x0, x1 = int(math.floor((cx - bw / 2) * w)), int(math.ceil((cx + bw / 2) * w))
        y0, y1 = int(math.floor((cy - bh / 2) * h)), int(math.ceil((cy + bh / 2) * h))
        mask[max(y0, 0) : min(y1, h), max(x0, 0) : min(x1, w)] = True
    return mask


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
    from pairs with salient targets, each patch containing a random salient pixel.
    """
    rng = np.random.default_rng([cfg.seed, stage, epoch])
    ps = cfg.patch_size
    specs = []
    for i in range(len(data)):
        h, w = data.ir[i].shape
        n = cfg.patches_per_image
        if stage == 1:
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


# ----------------------------------------------------------------------------- training


@dataclass
class _Progress:
    stage: int = 1
    epoch: int = 0  # finished epochs of `stage`
    step: int = 0
    seconds: float = 0.0
    curve: list[list[float]] = field(default_factory=list)


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
    checkpoint there is resumed from its last finished epoch (same data, same training settings;
    stage epochs may have grown). See the module docstring for the files written.
    """
    started = time.perf_counter()
    data_root, out_dir = Path(data_root), Path(out_dir)
    ckpt_path = Path(checkpoint_dir or out_dir / "checkpoints") / "last.pt"
    device = resolve_device(cfg.device)
    use_amp = cfg.amp and device.type == "cuda" and torch.cuda.is_bf16_supported()

    data = load_training_data(data_root, cfg)
    model = build_model(cfg, device)
    log.info(
        "CoCoNet on %s: %d trainable parameters, VGG19 %s",
        device,
        sum(p.numel() for p in model.trainable_parameters()),
        "ImageNet" if model.vgg_pretrained else "untrained (no weights found)",
    )
    prog, opt_state = _Progress(), None
    ckpt = _load_compatible_checkpoint(ckpt_path, cfg, data, model.vgg_pretrained, device)
    if ckpt is not None:
        model.load_state_dict(ckpt["model"])
        prog = _Progress(
            ckpt["stage"],
            ckpt["epoch"],
            ckpt["step"],
            ckpt["seconds"],
            [list(r) for r in ckpt["curve"]],
        )
        opt_state = ckpt["optimizer"]
        log.info(
            "resuming from %s: stage %d, %d epochs finished", ckpt_path, prog.stage, prog.epoch
        )
    prior_seconds = prog.seconds

    stage2_patches = len(sample_patches(data, cfg, 2, 0)) if cfg.stage2.epochs else 0
    for stage, sc in ((1, cfg.stage1), (2, cfg.stage2)):
        if stage < prog.stage:
            continue
        if stage == 2 and sc.epochs and stage2_patches == 0:
            log.warning(
                "stage 2 skipped: no training pair has a salient target (source: %s)",
                data.salient_source,
            )
            break
        first_epoch = prog.epoch if stage == prog.stage else 0
        if first_epoch >= sc.epochs:
            continue
        optimizer = torch.optim.Adam(model.trainable_parameters(), lr=sc.lr)
        if opt_state is not None and stage == prog.stage:
            optimizer.load_state_dict(opt_state)
        features = _contrastive_features(model, cfg, device) if stage == 2 else None
        model.train()
        for epoch in range(first_epoch, sc.epochs):
            t_epoch = time.perf_counter()
            specs = sample_patches(data, cfg, stage, epoch)
            n_steps = math.ceil(len(specs) / sc.batch_size)
            bar = progress_bar(
                total=n_steps, desc=f"coconet stage {stage} epoch {epoch + 1}/{sc.epochs}", unit="step",
                disable=not progress, leave=False,
            )  # fmt: skip
            epoch_losses = []
            for s in range(n_steps):
                batch = extract_patches(
                    data, specs[s * sc.batch_size : (s + 1) * sc.batch_size], cfg.patch_size
                )
                with flush_denormals():  # the backward pass produces subnormals too
                    values = _train_step(model, optimizer, batch.to(device), cfg, features, use_amp)
                prog.step += 1
                prog.curve.append([prog.step, epoch + 1, stage, *values])
                epoch_losses.append(values[0])
                bar.update(1)
                bar.set_postfix(loss=f"{values[0]:.4f}")
            bar.close()
            prog.stage, prog.epoch = stage, epoch + 1
            prog.seconds = prior_seconds + time.perf_counter() - started
            _save_checkpoint(ckpt_path, model, optimizer, prog, cfg, data)
            _write_curve(out_dir / "loss_curve.csv", prog.curve)
            log.info(
                "stage %d epoch %d/%d: mean loss %.4f over %d steps (%.1f s)",
                stage, epoch + 1, sc.epochs, float(np.mean(epoch_losses)), n_steps, time.perf_counter() - t_epoch,
            )  # fmt: skip
        # a finished stage hands a fresh optimiser to the next one
        opt_state = None
        prog.stage, prog.epoch = stage + 1, 0

    prog.seconds = prior_seconds + time.perf_counter() - started
    weights = out_dir / "coconet.pt"
    _atomic_torch_save(
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
        "n_patches": len(data) * cfg.patches_per_image,
        "n_patches_stage2": stage2_patches,
        "n_pairs": len(data),
        "salient_source": data.salient_source,
        "seconds": round(prog.seconds, 2),
        "device": str(device),
    }
    write_text(out_dir / "train_metrics.json", json.dumps(metrics, indent=2) + "\n")
    log.info("CoCoNet trained: %s (%.0f s)", weights, prog.seconds)
    return weights


def _train_step(
    model: CoCoNet,
    optimizer: torch.optim.Optimizer,
    batch: torch.Tensor,
    cfg: CoCoNetConfig,
    features: VGG19Relu | None,
    use_amp: bool,
) -> list[float]:
    """One optimisation step; returns [loss, loss_ssim, loss_mse, loss_con (nan in stage 1)]."""
    ir, vis, mask = batch[:, 0:1], batch[:, 1:2], batch[:, 2:3]
    w_ssim, w_mse = adaptive_weights(ir, vis, cfg.c1, cfg.c2)
    # reduced precision (CUDA + amp) for the networks only; SSIM and the loss ratios stay float32
    autocast = torch.autocast(device_type=batch.device.type, dtype=torch.bfloat16, enabled=use_amp)
    with autocast:
        fused = model(ir, vis).float()
    loss, l_ssim, l_mse = fidelity_loss(fused, ir, vis, w_ssim, w_mse, cfg.ssim_weight)
    l_con = None
    if features is not None:
        with autocast:
            l_con = contrastive_loss(fused, ir, vis, mask, features, cfg.n_negatives)
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


# ----------------------------------------------------------------------------- files


def _atomic_torch_save(obj: Any, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        torch.save(obj, tmp)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def _save_checkpoint(
    path: Path,
    model: CoCoNet,
    optimizer: torch.optim.Optimizer,
    prog: _Progress,
    cfg: CoCoNetConfig,
    data: TrainingData,
) -> None:
    _atomic_torch_save(
        {
            "format": CHECKPOINT_FORMAT,
            "model": model.state_dict(),
            "optimizer": optimizer.state_dict(),
            "stage": prog.stage,
            "epoch": prog.epoch,
            "step": prog.step,
            "seconds": prog.seconds,
            "curve": prog.curve,
            "config": cfg.to_dict(),
            "vgg_pretrained": model.vgg_pretrained,
            "data_fingerprint": data.fingerprint(),
            "code": code_fingerprint("fusion.coconet"),
        },
        path,
    )


def _load_compatible_checkpoint(
    path: Path, cfg: CoCoNetConfig, data: TrainingData, vgg_pretrained: bool, device: torch.device
) -> dict[str, Any] | None:
    """The checkpoint at `path` if training can continue from it, else None (with the reason logged)."""
    if not path.exists():
        return None
    try:
        ckpt = torch.load(path, map_location=device, weights_only=True)
    except Exception as exc:  # a checkpoint from another version or a damaged file: start over
        log.warning("%s: unreadable checkpoint (%s); training from scratch", path, exc)
        return None
    reason = _incompatibility(ckpt, cfg, data, vgg_pretrained)
    if reason:
        log.warning("%s not resumed (%s); training from scratch", path, reason)
        return None
    return ckpt


def _incompatibility(
    ckpt: dict[str, Any], cfg: CoCoNetConfig, data: TrainingData, vgg_pretrained: bool
) -> str | None:
    if not isinstance(ckpt, dict) or ckpt.get("format") != CHECKPOINT_FORMAT:
        return "not a CoCoNet training checkpoint"
    if ckpt.get("data_fingerprint") != data.fingerprint():
        return "the training data changed"
    if ckpt.get("code") != code_fingerprint("fusion.coconet"):
        return "the CoCoNet code changed"
    if ckpt.get("vgg_pretrained") != vgg_pretrained:
        return f"VGG19 ImageNet weights were {'' if ckpt.get('vgg_pretrained') else 'not '}available then and are {'' if vgg_pretrained else 'not '}now"
    old, new = ckpt["config"], cfg.to_dict()
    for key in TRAINING_KEYS:
        if old.get(key) != new[key]:
            return f"{key} changed from {old.get(key)!r} to {new[key]!r}"
    for stage in ("stage1", "stage2"):
        for key in ("batch_size", "lr"):
            if old[stage][key] != new[stage][key]:
                return f"{stage}.{key} changed from {old[stage][key]!r} to {new[stage][key]!r}"
    if ckpt["stage"] == 1 and ckpt["epoch"] > cfg.stage1.epochs:
        return (
            f"it holds {ckpt['epoch']} stage-1 epochs, more than the {cfg.stage1.epochs} configured"
        )
    if ckpt["stage"] == 2:
        if old["stage1"]["epochs"] != cfg.stage1.epochs:
            return "stage1.epochs changed after stage 2 had started"
        if ckpt["epoch"] > cfg.stage2.epochs:
            return f"it holds {ckpt['epoch']} stage-2 epochs, more than the {cfg.stage2.epochs} configured"
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
