"""Train DenseFuse as an autoencoder on patches of the infrared and visible training images.

Outputs in `out_dir`, each written atomically:
    densefuse.pt          {"format", "state_dict", "config", "train"}; torch.load(weights_only=True)
    loss_curve.csv        step,epoch,loss (one row per optimiser step)
    train_metrics.json    final and first-epoch losses, steps, image and patch counts, seconds, device
A per-epoch checkpoint `.densefuse_checkpoint.pt` lets an interrupted run resume with the same
result (patches are cut once from the seed, each epoch's order comes from (seed, epoch)); it is
removed when training finishes.
"""

from __future__ import annotations

import json
import logging
import os
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from fusion.densefuse.config import DenseFuseConfig
from fusion.densefuse.loss import reconstruction_loss
from fusion.densefuse.model import DenseFuseNet
from fusion.registry import resolve_device
from mmif.data.layout import list_pairs
from mmif.io import read_image, write_text

log = logging.getLogger(__name__)

WEIGHTS_NAME = "densefuse.pt"
CHECKPOINT_NAME = ".densefuse_checkpoint.pt"
FORMAT = "mmif-densefuse-v1"


def _save_atomic(obj: Any, path: Path) -> None:
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        torch.save(obj, tmp)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def sample_patches(
    paths: list[Path], patch_size: int, per_image: int, seed: int, progress: bool = True
) -> torch.Tensor:
    """Cut `per_image` random square patches from every image (read as grey) -> N x 1 x P x P uint8.

    Each image has its own generator seeded from (seed, index), so the patches do not depend on
    reading order. Images smaller than the patch are padded by edge replication.
    """
    out = np.empty((len(paths) * per_image, 1, patch_size, patch_size), dtype=np.uint8)
    for i, path in enumerate(
        tqdm(paths, desc="densefuse patches", unit="img", disable=not progress)
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
    data_root: Path, out_dir: Path, cfg: DenseFuseConfig, progress: bool = True
) -> Path:
    """Train on `data_root/train` (canonical layout) and return `out_dir/densefuse.pt`."""
    data_root, out_dir = Path(data_root), Path(out_dir)
    pairs = list_pairs(data_root, "train")
    if not pairs:
        raise FileNotFoundError(
            f"{data_root / 'train'}: no training pairs; run `mmif prepare` first"
        )
    device = resolve_device(cfg.device)
    out_dir.mkdir(parents=True, exist_ok=True)
    images = [p.ir for p in pairs] + [p.vis for p in pairs]
    patches = sample_patches(images, cfg.patch_size, cfg.patches_per_image, cfg.seed, progress)
    n = patches.shape[0]
    steps_per_epoch = -(-n // cfg.batch_size)
    log.info(
        "densefuse: %d patches of %d px from %d images, %d steps/epoch x %d epochs on %s",
        n,
        cfg.patch_size,
        len(images),
        steps_per_epoch,
        cfg.epochs,
        device,
    )

    model = new_model(cfg.seed).to(device)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    rows: list[tuple[int, int, float]] = []
    epoch_stats: list[dict[str, float]] = []
    start_epoch, seconds = 0, 0.0
    ckpt_path = out_dir / CHECKPOINT_NAME
    if ckpt_path.exists():
        ckpt = torch.load(ckpt_path, map_location=device, weights_only=True)
        if ckpt.get("config") == asdict(cfg):
            model.load_state_dict(ckpt["state_dict"])
            opt.load_state_dict(ckpt["optimizer"])
            rows = [(int(s), int(e), float(v)) for s, e, v in ckpt["rows"]]
            epoch_stats = list(ckpt["epoch_stats"])
            start_epoch, seconds = int(ckpt["epoch"]) + 1, float(ckpt["seconds"])
            log.info("densefuse: resuming after epoch %d from %s", start_epoch, ckpt_path)
        else:
            log.info("densefuse: %s was made with other parameters; starting afresh", ckpt_path)

    model.train()
    for epoch in range(start_epoch, cfg.epochs):
        t0 = time.perf_counter()
        order = torch.randperm(
            n, generator=torch.Generator().manual_seed(cfg.seed * 100_003 + epoch)
        )
        sums = {"loss": 0.0, "pixel": 0.0, "ssim": 0.0}
        bar = tqdm(
            range(steps_per_epoch),
            desc=f"densefuse epoch {epoch + 1}/{cfg.epochs}",
            disable=not progress,
        )
        for b in bar:
            idx = order[b * cfg.batch_size : (b + 1) * cfg.batch_size]
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
        epoch_stats.append({k: v / steps_per_epoch for k, v in sums.items()})
        log.info(
            "densefuse epoch %d: loss %.5f (mse %.5f, ssim %.4f)",
            epoch + 1,
            *epoch_stats[-1].values(),
        )
        state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
        _save_atomic(
            {
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
        "epochs": cfg.epochs,
        "steps": len(rows),
        "n_train_images": len(images),
        "n_patches": n,
        "train_seconds": round(seconds, 2),
        "device": str(device),
    }
    weights = out_dir / WEIGHTS_NAME
    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    _save_atomic(
        {"format": FORMAT, "state_dict": state, "config": asdict(cfg), "train": metrics}, weights
    )
    write_text(
        out_dir / "loss_curve.csv",
        "step,epoch,loss\n" + "".join(f"{s},{e},{v:.6g}\n" for s, e, v in rows),
    )
    write_text(out_dir / "train_metrics.json", json.dumps(metrics, indent=2) + "\n")
    ckpt_path.unlink(missing_ok=True)
    log.info("densefuse: wrote %s (final loss %.5f)", weights, final["loss"])
    return weights


def load_densefuse(
    path: str | Path, device: torch.device | str = "cpu"
) -> tuple[DenseFuseNet, dict[str, Any]]:
    """Load a `densefuse.pt` written by `train_densefuse` -> (network in eval mode, its training config)."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(
            f"{path}: DenseFuse weights not found; run `mmif train --method densefuse` first"
        )
    ckpt = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(ckpt, dict) or ckpt.get("format") != FORMAT:
        raise ValueError(
            f"{path}: not a DenseFuse weights file written by this project (format {FORMAT})"
        )
    model = DenseFuseNet()
    model.load_state_dict(ckpt["state_dict"])
    return model.to(device).eval(), dict(ckpt.get("config") or {})
