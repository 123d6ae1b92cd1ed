"""Seconds per training epoch of the segmentation stage at the default size, on CPU and GPU.

Builds a synthetic prepared dataset (default size of `SyntheticConfig`, 256 x 192) in a temporary
folder, then times `segmentation.train.train_epoch` with params.yaml's `segment:`
settings after one warm-up epoch, and one evaluation pass over the test images.

    .venv/bin/python benchmarks/bench_segment.py                   # defaults: 32 images, 2 epochs
    .venv/bin/python benchmarks/bench_segment.py --n-train 96 --epochs 3 --devices cuda
    .venv/bin/python benchmarks/bench_segment.py --n-train 96 --epochs 3 --whole-encoder

--whole-encoder also times the network as smp builds it, with the encoder layers that run below
`encoder_depth` unused (segmentation.model.drop_unused_stages removes them in the pipeline).
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch

from mmif.io import rgb_to_grey_uint8, write_image
from mmif.layout import Manifest
from mmif.runtime import machine_description
from preparation.synthetic import SEG_CLASSES, SyntheticConfig, generate
from segmentation.config import SegmentConfig
from segmentation.data import find_samples
from segmentation.evaluate import evaluate
from segmentation.model import build_model
from segmentation.train import SegmentationLoss, make_loader, train_epoch


def build_data(root: Path, width: int, height: int, n_train: int, n_test: int) -> tuple[Path, Path]:
    data_root, fused_root = root / "prepared", root / "fused" / "max"
    cfg = SyntheticConfig(width=width, height=height, n_train=n_train, n_val=0, n_test=n_test)
    for scene in generate(cfg):
        d = data_root / scene.split
        write_image(d / "ir" / f"{scene.stem}.png", scene.ir)
        write_image(d / "vis" / f"{scene.stem}.png", scene.vis)
        write_image(d / "masks" / f"{scene.stem}.png", scene.mask)
        fused = np.maximum(scene.ir, rgb_to_grey_uint8(scene.vis))
        write_image(fused_root / scene.split / f"{scene.stem}.png", fused)
    Manifest(
        name="bench",
        provenance="synthetic",
        splits={"train": n_train, "test": n_test},
        seg_classes=list(SEG_CLASSES),
        has_seg_masks=True,
    ).save(data_root)
    return data_root, fused_root


@contextlib.contextmanager
def unused_layers_kept() -> Iterator[None]:
    """build_model as if drop_unused_stages did nothing: the encoder exactly as smp builds it."""
    import segmentation.model as model_module

    original = model_module.drop_unused_stages
    model_module.drop_unused_stages = lambda encoder: 0
    try:
        yield
    finally:
        model_module.drop_unused_stages = original


def bench(
    device: str,
    data_root: Path,
    fused_root: Path,
    cfg: SegmentConfig,
    epochs: int,
    label: str = "",
) -> None:
    dev = torch.device(device)
    n_classes = len(SEG_CLASSES)
    train = find_samples(fused_root, data_root, "train")
    test = find_samples(fused_root, data_root, "test")
    torch.manual_seed(0)
    model, _ = build_model(cfg, n_classes)
    model.to(dev)
    amp = cfg.amp and dev.type == "cuda"
    train_loader = make_loader(train, n_classes, cfg, seed=0, train=True)
    test_loader = make_loader(test, n_classes, cfg, seed=0, train=False)
    optimizer = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(
        optimizer, T_max=(epochs + 1) * len(train_loader)
    )
    scaler = torch.amp.GradScaler(dev.type, enabled=amp)
    loss_fn = SegmentationLoss(cfg.dice_weight)

    def sync() -> None:
        if dev.type == "cuda":
            torch.cuda.synchronize(dev)

    times = []
    for epoch in range(epochs + 1):  # epoch 0 warms up (allocator, cuDNN autotuning)
        train_loader.dataset.set_epoch(epoch)
        sync()
        start = time.perf_counter()
        train_epoch(
            model,
            train_loader,
            loss_fn,
            optimizer,
            scheduler,
            scaler,
            dev,
            amp,
            desc=f"{device} epoch {epoch}",
        )
        sync()
        if epoch:
            times.append(time.perf_counter() - start)
    sync()
    start = time.perf_counter()
    evaluate(model, test_loader, n_classes, dev, amp)
    sync()
    eval_s = time.perf_counter() - start
    per_epoch = float(np.median(times))
    name = machine_description(dev)
    if dev.type == "cpu":
        name += f", {torch.get_num_threads()} torch threads"
    print(
        f"{device:5s} {name}{label}: {per_epoch:.2f} s/epoch ({len(train) / per_epoch:.1f} train images/s, "
        f"median of {len(times)}), evaluation {eval_s:.2f} s for {len(test)} images, amp={amp}"
    )


def pipeline_config(batch_size: int | None) -> SegmentConfig:
    """The shared segmenter's schedule of params.yaml (`segment.base`: what `dvc repro` trains
    under the default protocol), batch size optionally replaced."""
    import dataclasses

    from mmif.config import load_params

    params = load_params(Path(__file__).resolve().parents[1] / "params.yaml")
    cfg = params.segment.schedule("base")
    return cfg if batch_size is None else dataclasses.replace(cfg, batch_size=batch_size)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    default = SyntheticConfig()
    p.add_argument("--width", type=int, default=default.width)
    p.add_argument("--height", type=int, default=default.height)
    p.add_argument("--n-train", type=int, default=32, help="training images per epoch")
    p.add_argument("--n-test", type=int, default=8)
    p.add_argument("--epochs", type=int, default=2, help="timed epochs (after one warm-up epoch)")
    p.add_argument("--batch-size", type=int, default=None, help="default: params.yaml's")
    p.add_argument(
        "--devices", nargs="+", default=None, help="default: cpu, and cuda when available"
    )
    p.add_argument(
        "--whole-encoder",
        action="store_true",
        help="also time the encoder as smp builds it (with its unused layers)",
    )
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    devices = args.devices or (["cpu", "cuda"] if torch.cuda.is_available() else ["cpu"])
    cfg = pipeline_config(args.batch_size)
    print(
        f"segmentation benchmark: {cfg.arch}/{cfg.encoder}, {args.width}x{args.height}, "
        f"{args.n_train} train images, batch {cfg.batch_size}, torch {torch.__version__}"
    )
    with tempfile.TemporaryDirectory() as tmp:
        data_root, fused_root = build_data(
            Path(tmp), args.width, args.height, args.n_train, args.n_test
        )
        for device in devices:
            if args.whole_encoder:
                with unused_layers_kept():
                    bench(device, data_root, fused_root, cfg, args.epochs, ", whole encoder")
            bench(device, data_root, fused_root, cfg, args.epochs, ", unused layers removed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
