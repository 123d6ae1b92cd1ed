"""Train DenseFuse as an autoencoder on patches of the infrared and visible training images.

Outputs in `out_dir`, each written atomically:
    densefuse.pt          {"format", "state_dict", "config", "train"}; torch.load(weights_only=True)
    loss_curve.csv        step,epoch,loss (one row per optimiser step)
    train_metrics.json    final and first-epoch losses, steps, image and patch counts, seconds, device
    checkpoints/last.pt   model, optimiser, curve after every epoch (in `checkpoint_dir`)
Training lasts `epochs` passes over the patches, or `steps` optimiser steps when set (the last
pass then stops where the budget is spent). The checkpoint lets a later run continue with the
same result (patches are cut once from the seed, each epoch's order comes from (seed, epoch)):
after an interruption, or with more epochs or steps configured. It is continued only when the training patches (data), every other setting and the
DenseFuse code are unchanged; otherwise training starts afresh, saying why.
"""

from __future__ import annotations

import hashlib
import logging
import time
from dataclasses import asdict
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import torch

from fusion.checkpoints import TrainingFingerprint, flat_params, load_resumable
from fusion.densefuse.config import DenseFuseConfig
from fusion.densefuse.loss import reconstruction_loss
from fusion.densefuse.model import DenseFuseNet
from mmif.errors import InputError, MissingInputError
from mmif.io import read_image, save_torch, write_json, write_text
from mmif.layout import list_pairs
from mmif.logging_utils import progress_bar
from mmif.runtime import code_fingerprint, resolve_device

log = logging.getLogger(__name__)

WEIGHTS_NAME = "densefuse.pt"
CHECKPOINT_NAME = "last.pt"
CHECKPOINT_FORMAT = "mmif-densefuse-train-v3"
FORMAT = "mmif-densefuse-v1"
#: the parameters that shape a training run: a checkpoint made with other values is not continued
#: (`fusion.checkpoints`; epochs and steps may grow, the fusion rule and device do not matter)
TRAINING_KEYS = (
    "patches_per_step",
    "lr",
    "patch_size",
    "patches_per_image",
    "ssim_weight",
    "seed",
)


def sample_patches(
    paths: list[Path], patch_size: int, per_image: int, seed: int, progress: bool = True
) -> torch.Tensor:
    """Cut `per_image` random square patches from every image (read as grey) -> N x 1 x P x P uint8.

    Each image has its own generator seeded from (seed, index), so the patches do not depend on
    reading order. Images smaller than the patch are padded by edge replication.
    """
    out = np.empty((len(paths) * per_image, 1, patch_size, patch_size), dtype=np.uint8)
    for i, path in enumerate(
        progress_bar(paths, desc="densefuse patches", unit="img", disable=not progress)
    ):
        img = read_image(path, mode="grey")
        ph, pw = max(0, patch_size - img.shape[0]), max(0, patch_size - img.shape[1])
        if ph or pw:
            img = np.pad(img, ((0, ph), (0, pw)), mode="edge")
        rng = np.random.default_rng([seed, i])
        ys = rng.integers(0, img.shape[0] - patch_size + 1, size=per_image)
        xs = rng.integers(0, img.shape[1] - patch_size + 1, size=per_image)
        for k, (y, x) in enumerate(zip(ys, xs, strict=True)):
            out[i * per_image + k, 0] = img[y : y + patch_size, x : x + patch_size]
    return torch.from_numpy(out)


def new_model(seed: int) -> DenseFuseNet:
    """A freshly initialised network; the seed fixes the weights without touching global RNG state."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return DenseFuseNet()


def train_densefuse(
    data_root: Path,
    out_dir: Path,
    cfg: DenseFuseConfig,
    progress: bool = True,
    checkpoint_dir: Path | None = None,
) -> Path:
    """Train on `data_root/train` (canonical layout) and return `out_dir/densefuse.pt`.

    checkpoint_dir: where `last.pt` lives (default `out_dir/checkpoints`); a compatible
    checkpoint there is continued from its last finished epoch (see the module docstring).
    """
    data_root, out_dir = Path(data_root), Path(out_dir)
    pairs = list_pairs(data_root, "train")
    if not pairs:
        raise MissingInputError(
            f"{data_root / 'train'}: no training pairs; run `mmif prepare` first"
        )
    device = resolve_device(cfg.device, "fusion.densefuse.device")
    out_dir.mkdir(parents=True, exist_ok=True)
    images = [p.ir for p in pairs] + [p.vis for p in pairs]
    patches = sample_patches(images, cfg.patch_size, cfg.patches_per_image, cfg.seed, progress)
    n = patches.shape[0]
    steps_per_epoch = -(-n // cfg.patches_per_step)
    total_steps = cfg.steps if cfg.steps is not None else cfg.epochs * steps_per_epoch
    n_epochs = -(-total_steps // steps_per_epoch)
    log.info(
        "densefuse: %d patches of %d px from %d images, %d steps/epoch, %d steps (%d epochs) on %s",
        n,
        cfg.patch_size,
        len(images),
        steps_per_epoch,
        total_steps,
        n_epochs,
        device,
    )

    model = new_model(cfg.seed).to(device)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    rows: list[tuple[int, int, float]] = []
    epoch_stats: list[dict[str, float]] = []
    start_epoch, seconds = 0, 0.0
    ckpt_path = Path(checkpoint_dir or out_dir / "checkpoints") / CHECKPOINT_NAME
    fingerprint = TrainingFingerprint(
        format=CHECKPOINT_FORMAT,
        data=hashlib.sha256(patches.numpy().tobytes()).hexdigest()[:16],
        code=code_fingerprint("fusion.densefuse"),
        params=flat_params(asdict(cfg), TRAINING_KEYS),
    )
    ckpt = load_resumable(
        ckpt_path,
        fingerprint,
        name="densefuse",
        budget_check=partial(
            _budget_refusal, total_steps=total_steps, steps_per_epoch=steps_per_epoch
        ),
    )
    if ckpt is not None:
        model.load_state_dict(ckpt["state_dict"])
        opt.load_state_dict(ckpt["optimizer"])
        rows = [(int(s), int(e), float(v)) for s, e, v in ckpt["rows"]]
        epoch_stats = list(ckpt["epoch_stats"])
        start_epoch, seconds = int(ckpt["epoch"]) + 1, float(ckpt["seconds"])
        log.info(
            "densefuse: continuing from %s: %d of %d epochs finished, %d of %d steps done",
            ckpt_path,
            start_epoch,
            n_epochs,
            len(rows),
            total_steps,
        )

    model.train()
    for epoch in range(start_epoch, n_epochs):
        epoch_steps = min(steps_per_epoch, total_steps - epoch * steps_per_epoch)
        t0 = time.perf_counter()
        order = torch.randperm(
            n, generator=torch.Generator().manual_seed(cfg.seed * 100_003 + epoch)
        )
        sums = {"loss": 0.0, "pixel": 0.0, "ssim": 0.0}
        bar = progress_bar(
            range(epoch_steps),
            desc=f"densefuse epoch {epoch + 1}/{n_epochs}",
            disable=not progress,
        )
        for b in bar:
            idx = order[b * cfg.patches_per_step : (b + 1) * cfg.patches_per_step]
            x = patches[idx].to(device=device, dtype=torch.float32).div_(255.0)
            loss, parts = reconstruction_loss(model(x), x, cfg.ssim_weight)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            value = float(loss.detach())
            rows.append((len(rows), epoch, value))
            for k, v in (("loss", value), *parts.items()):
                sums[k] += v
            bar.set_postfix(loss=f"{value:.4f}")
        seconds += time.perf_counter() - t0
        epoch_stats.append({k: v / epoch_steps for k, v in sums.items()})
        log.info(
            "densefuse epoch %d: loss %.5f (mse %.5f, ssim %.4f)",
            epoch + 1,
            *epoch_stats[-1].values(),
        )
        state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
        save_torch(
            {
                "fingerprint": fingerprint.to_dict(),
                "config": asdict(cfg),
                "state_dict": state,
                "optimizer": opt.state_dict(),
                "rows": rows,
                "epoch_stats": epoch_stats,
                "epoch": epoch,
                "seconds": seconds,
            },
            ckpt_path,
        )

    final = epoch_stats[-1]
    metrics = {
        "final_loss": final["loss"],
        "final_pixel_loss": final["pixel"],
        "final_ssim": final["ssim"],
        "first_epoch_loss": epoch_stats[0]["loss"],
        "epochs": n_epochs,
        "steps": len(rows),
        "patches_seen": sum(
            min(cfg.patches_per_step, n - (s % steps_per_epoch) * cfg.patches_per_step)
            for s, _, _ in rows
        ),
        "n_train_images": len(images),
        "n_patches": n,
        "train_seconds": round(seconds, 2),
        "device": str(device),
    }
    weights = out_dir / WEIGHTS_NAME
    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    save_torch(
        {"format": FORMAT, "state_dict": state, "config": asdict(cfg), "train": metrics}, weights
    )
    write_text(
        out_dir / "loss_curve.csv",
        "step,epoch,loss\n" + "".join(f"{s},{e},{v:.6g}\n" for s, e, v in rows),
    )
    write_json(out_dir / "train_metrics.json", metrics)
    log.info("densefuse: wrote %s (final loss %.5f)", weights, final["loss"])
    return weights


def _budget_refusal(ckpt: dict[str, Any], total_steps: int, steps_per_epoch: int) -> str | None:
    """Why a checkpoint cannot be continued to `total_steps` (None: it can)."""
    done = len(ckpt["rows"])
    if done > total_steps:
        return f"it holds {done} steps, more than the {total_steps} configured"
    if done < total_steps and done != (int(ckpt["epoch"]) + 1) * steps_per_epoch:
        # it stopped mid-epoch (a smaller step budget): continuing would skip the rest of that
        # epoch's patches, so the result would differ from a fresh run
        return f"it stopped {done} steps in, in the middle of an epoch"
    return None


def load_densefuse(
    path: str | Path, device: torch.device | str = "cpu"
) -> tuple[DenseFuseNet, dict[str, Any]]:
    """Load a `densefuse.pt` written by `train_densefuse` -> (network in eval mode, its training config)."""
    path = Path(path)
    if not path.exists():
        raise MissingInputError(
            f"{path}: DenseFuse weights not found; run `mmif train --method densefuse` first"
        )
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise InputError(
            f"{path}: not a readable weights file ({exc}); re-run the training"
        ) from exc
    if not isinstance(ckpt, dict) or ckpt.get("format") != FORMAT:
        raise InputError(
            f"{path}: not a DenseFuse weights file written by this project (format {FORMAT})"
        )
    model = DenseFuseNet()
    model.load_state_dict(ckpt["state_dict"])
    return model.to(device).eval(), dict(ckpt.get("config") or {})
