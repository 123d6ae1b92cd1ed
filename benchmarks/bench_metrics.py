"""Seconds per (ir, vis, fused) triple for every fusion metric and for the whole suite.

Uses real 640x480 MSRS pairs from ../shared/data/msrs_det200 when present (visible images are
RGB; the fused image is their luminance average, in colour), random smooth images otherwise.

    .venv/bin/python benchmarks/bench_metrics.py --device cpu --repeats 5
    .venv/bin/python benchmarks/bench_metrics.py --size 160x120 --repeats 1   # quick check

Each metric is timed alone (its shared intermediates recomputed), then all of them together
through `compute_metrics`, which shares intermediates. The minimum over repeats is reported.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch

from metrics import METRIC_NAMES, compute_metrics
from metrics.inputs import Triple
from metrics.suite import compute_on_triple

REPO = Path(__file__).resolve().parents[1]
MSRS = REPO / ".." / "shared" / "data" / "msrs_det200" / "test"


def load_triples(
    n: int, width: int, height: int, seed: int
) -> tuple[list[tuple[torch.Tensor, ...]], str]:
    if (width, height) == (640, 480) and (MSRS / "ir").is_dir():
        from mmif.io import read_image, to_tensor

        stems = sorted(p.stem for p in (MSRS / "ir").iterdir())[:n]
        triples = []
        for stem in stems:
            ir = to_tensor(np.array(read_image(next((MSRS / "ir").glob(stem + ".*")))))
            vis = to_tensor(np.array(read_image(next((MSRS / "vi").glob(stem + ".*")), mode="rgb")))
            fused = ((ir + vis) / 2 * 255).round() / 255
            triples.append((ir, vis, fused))
        return triples, f"MSRS test pairs ({', '.join(stems)})"
    gen = torch.Generator().manual_seed(seed)
    triples = []
    for _ in range(n):
        coarse = torch.rand(3, 1, height // 8 + 2, width // 8 + 2, generator=gen)
        x = torch.nn.functional.interpolate(
            coarse, size=(height, width), mode="bicubic", align_corners=False
        )
        x = ((x + 0.1 * torch.rand(x.shape, generator=gen)).clamp(0, 1) * 255).round() / 255
        triples.append((x[0:1], x[1:2], ((x[0:1] + x[1:2]) / 2 * 255).round() / 255))
    return triples, "random smooth images"


def best_time(fn, repeats: int, sync) -> float:
    best = float("inf")
    for _ in range(repeats):
        sync()
        start = time.perf_counter()
        fn()
        sync()
        best = min(best, time.perf_counter() - start)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--device", default="cpu", help="cpu, cuda or cuda:<i> (default cpu)")
    parser.add_argument(
        "--repeats", type=int, default=3, help="timed runs per measurement; the minimum is kept"
    )
    parser.add_argument(
        "--images", type=int, default=2, help="triples timed (seconds are per triple)"
    )
    parser.add_argument(
        "--size", default="640x480", help="WIDTHxHEIGHT (real data only at 640x480)"
    )
    parser.add_argument(
        "--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)"
    )
    parser.add_argument("--convention", default="cddfuse", choices=["cddfuse", "standard"])
    args = parser.parse_args()

    if args.threads:
        torch.set_num_threads(args.threads)
    width, height = (int(v) for v in args.size.lower().split("x"))
    device = torch.device(args.device)
    sync = (lambda: torch.cuda.synchronize(device)) if device.type == "cuda" else (lambda: None)
    triples, source = load_triples(args.images, width, height, seed=0)
    triples = [tuple(t.to(device) for t in triple) for triple in triples]

    # warm up (allocator, lazy initialisation)
    compute_metrics(*triples[0], convention=args.convention)

    per_metric = {}
    for name in METRIC_NAMES:

        def run_one(name=name):
            for ir, vis, fused in triples:
                compute_on_triple(Triple.from_unit(ir, vis, fused), [name], args.convention)

        per_metric[name] = best_time(run_one, args.repeats, sync) / len(triples)

    def run_all():
        for ir, vis, fused in triples:
            compute_metrics(ir, vis, fused, convention=args.convention)

    total = best_time(run_all, args.repeats, sync) / len(triples)

    threads = torch.get_num_threads() if device.type == "cpu" else "-"
    print(f"fusion metrics, {width}x{height}, {source}")
    print(
        f"device {device}, torch threads {threads}, convention {args.convention}, min of {args.repeats} runs"
    )
    print(f"{'metric':<12}{'s / triple':>12}")
    for name, seconds in per_metric.items():
        print(f"{name:<12}{seconds:>12.4f}")
    print(f"{'sum':<12}{sum(per_metric.values()):>12.4f}")
    print(f"{'all (shared)':<12}{total:>12.4f}")


if __name__ == "__main__":
    main()
