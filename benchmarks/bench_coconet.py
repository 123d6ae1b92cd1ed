"""Speed of CoCoNet: seconds per fused image and per training step.

    python benchmarks/bench_coconet.py [--device cpu|cuda] [--threads N] [--size 640x480]
        [--batch 30] [--patch 64] [--negatives 3] [--precision auto|float32|bfloat16]
        [--data PREPARED] [--repeats 3] [--json FILE]

Inputs are synthetic road scenes (preparation.synthetic), not noise: real image content matters on
CPU (subnormal floats in the attention). Reported numbers are medians over `--repeats` runs after
one warm-up; "cpu" is the process CPU time of the same runs (less sensitive to a busy machine).
Training steps use the network, losses and optimiser of fusion.coconet.train: stage 1 (fidelity
loss) and stage 2 (plus the contrastive loss with --negatives negatives; --precision is
fusion.coconet.contrastive_precision, the dtype of its VGG19 passes). --data takes the
training patches from a prepared dataset (e.g. real MSRS pairs) instead of synthetic scenes.
Targets on the 2-core reference CPU: <= 2.4 s per 640x480 image, <= 2.8 s per stage-1 step,
<= 4 s per stage-2 step (30 x 64x64, 3 negatives, 2 threads).
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from fusion.coconet.config import CoCoNetConfig
from fusion.coconet.network import flush_denormals
from fusion.coconet.train import (
    TrainingData,
    _contrastive_features,
    _train_step,
    build_model,
    contrastive_dtype,
    extract_patches,
    load_training_data,
    sample_patches,
)
from fusion.registry import method_params
from mmif.io import rgb_to_grey_uint8, to_tensor
from mmif.runtime import resolve_device
from preparation.synthetic import SyntheticConfig, generate


def _timed(fn: Callable[[], object], device: torch.device, repeats: int) -> tuple[float, float]:
    """(median wall seconds, median CPU seconds) of fn after one warm-up call."""
    fn()
    walls, cpus = [], []
    for _ in range(repeats):
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        t, c = time.perf_counter(), time.process_time()
        fn()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        walls.append(time.perf_counter() - t)
        cpus.append(time.process_time() - c)
    return statistics.median(walls), statistics.median(cpus)


def _scenes(width: int, height: int, n: int) -> list:
    cfg = SyntheticConfig(width=width, height=height, n_train=n, n_val=0, n_test=0)
    return list(generate(cfg))


def bench_fusion(
    model, device: torch.device, width: int, height: int, repeats: int
) -> tuple[float, float]:
    scene = _scenes(width, height, 1)[0]
    ir = to_tensor(scene.ir).to(device)
    vis = to_tensor(rgb_to_grey_uint8(scene.vis)).to(device)
    model.eval()

    def run() -> None:
        with torch.inference_mode():
            model(ir, vis)

    return _timed(run, device, repeats)


def training_data(cfg: CoCoNetConfig, data_root: Path | None) -> TrainingData:
    if data_root is not None:
        return load_training_data(data_root, cfg)
    scenes = _scenes(256, 192, 8)
    return TrainingData(
        stems=[s.stem for s in scenes],
        ir=[s.ir for s in scenes],
        vis=[rgb_to_grey_uint8(s.vis) for s in scenes],
        salient=[s.salient > 0 for s in scenes],
        salient_source="salient",
    )


def bench_train(
    model, cfg: CoCoNetConfig, data: TrainingData, device: torch.device, stage: int, repeats: int
) -> tuple[float, float]:
    specs = sample_patches(data, cfg, stage, 0)
    if len(specs) < cfg.stage1.patches_per_step:
        specs = np.concatenate([specs] * (cfg.stage1.patches_per_step // max(len(specs), 1) + 1))
    batch = extract_patches(data, specs[: cfg.stage1.patches_per_step], cfg.patch_size).to(device)
    features = _contrastive_features(model, cfg, device) if stage == 2 else None
    con_dtype = contrastive_dtype(cfg, device)
    optimizer = torch.optim.Adam(model.trainable_parameters(), lr=1e-5)
    model.train()

    def run() -> None:
        with flush_denormals():
            _train_step(model, optimizer, batch, cfg, features, False, con_dtype)

    return _timed(run, device, repeats)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--device", default="cpu", help="cpu, cuda or auto (default: %(default)s)")
    p.add_argument(
        "--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)"
    )
    p.add_argument("--size", default="640x480", help="fused image size WxH (default: %(default)s)")
    p.add_argument(
        "--batch", type=int, default=30, help="patches per training step (default: %(default)s)"
    )
    p.add_argument(
        "--patch", type=int, default=64, help="training patch side (default: %(default)s)"
    )
    p.add_argument(
        "--negatives", type=int, default=3, help="contrastive negatives (default: %(default)s)"
    )
    p.add_argument(
        "--precision",
        default="auto",
        choices=["auto", "float32", "bfloat16"],
        help="contrastive_precision: dtype of the loss's VGG19 passes (default: %(default)s)",
    )
    p.add_argument(
        "--data", type=Path, help="prepared dataset whose training pairs give the patches"
    )
    p.add_argument(
        "--repeats", type=int, default=3, help="timed runs after one warm-up (default: %(default)s)"
    )
    p.add_argument(
        "--skip",
        choices=["fusion", "train", "stage2"],
        action="append",
        default=[],
        help="skip a part",
    )
    p.add_argument("--json", type=Path, help="also write the results to this JSON file")
    args = p.parse_args(argv)

    if args.threads:
        torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    width, height = (int(v) for v in args.size.lower().split("x"))
    cfg = method_params(
        "coconet",
        {
            "stage1": {"epochs": 1, "patches_per_step": args.batch, "lr": 1e-5},
            "patch_size": args.patch,
            "patches_per_image": max(4, args.batch // 8 + 1),
            "n_negatives": args.negatives,
            "contrastive_precision": args.precision,
        },
    )
    model = build_model(cfg, device)
    print(f"device {device}, threads {torch.get_num_threads()}, torch {torch.__version__}")
    results: dict[str, object] = {"device": str(device), "threads": torch.get_num_threads()}

    if "fusion" not in args.skip:
        wall, cpu = bench_fusion(model, device, width, height, args.repeats)
        print(f"fusion {width}x{height}: {wall:.3f} s/image (cpu {cpu:.3f} s)")
        results["fusion_s_per_image"] = {"size": f"{width}x{height}", "wall": wall, "cpu": cpu}
    if "train" not in args.skip:
        data = training_data(cfg, args.data)
        for stage in (1, 2):
            if stage == 2 and "stage2" in args.skip:
                continue
            wall, cpu = bench_train(model, cfg, data, device, stage, args.repeats)
            dtype = str(contrastive_dtype(cfg, device) or torch.float32).replace("torch.", "")
            extra = f", {args.negatives} negatives, VGG19 passes in {dtype}" if stage == 2 else ""
            print(
                f"train step stage {stage} ({args.batch} x {args.patch}x{args.patch}{extra}): {wall:.3f} s/step (cpu {cpu:.3f} s)"
            )
            results[f"train_stage{stage}_s_per_step"] = {
                "batch": args.batch,
                "patch": args.patch,
                "data": str(args.data or "synthetic"),
                "wall": wall,
                "cpu": cpu,
            }
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
