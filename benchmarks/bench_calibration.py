"""False-positive rate (A/A) and power (A/B) of three ways to test a difference between methods.

Simulated studies (report.simulation): 3 seeds, 32 test images, detection mAP50 and
segmentation mIoU computed by the report's own code from simulated per-image detections and
confusion counts, with a seed effect shared by the methods of a seed (paired: frozen /
finetune) or drawn per method (unpaired: retrain) and a method-seed interaction. Tests:

- `seeds+images` (the report's, report.comparison.difference): seed variance (within-seed
  differences when paired, Welch otherwise) plus image-bootstrap variance, Student t with
  Welch-Satterthwaite degrees of freedom;
- `images only` (the report before issue 12): percentile bootstrap of the seed-averaged
  difference over test images, seeds paired by number; training variance ignored;
- `two-level bootstrap`: resample the seeds (with replacement), then use the image resample,
  percentile interval; with 3 seeds it sees only 10 distinct seed sets.

    .venv/bin/python benchmarks/bench_calibration.py               # 400 studies per cell
    .venv/bin/python benchmarks/bench_calibration.py --studies 100  # quicker
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np

from detection.ap import match_detections, mean_average_precision  # noqa: E402
from mmif.iou import iou_from_confusion  # noqa: E402
from report.comparison import SeedScores, difference  # noqa: E402
from report.simulation import (  # noqa: E402
    SimulationSetup,
    run_qualities,
    simulate_confusion,
    simulate_detections,
    simulate_scene,
)
from report.stats import nanmean_last, resample_counts  # noqa: E402

ALPHA = 0.05


def scores(task, scene, qualities, weights, setup, rng) -> SeedScores:
    full, boot = [], []
    for q in qualities:
        if task == "detect":
            m = match_detections(simulate_detections(scene, q, setup, rng), setup.n_classes)
            full.append(float(mean_average_precision(m)))
            boot.append(mean_average_precision(m, weights))
        else:
            counts = simulate_confusion(scene, q, setup, rng).astype(np.float64)
            c = counts.shape[1]
            flat = counts.reshape(len(counts), c * c)
            full.append(float(nanmean_last(iou_from_confusion(flat.sum(0).reshape(c, c)))))
            boot.append(nanmean_last(iou_from_confusion((weights @ flat).reshape(-1, c, c))))
    return SeedScores(tuple(range(len(qualities))), np.array(full), np.stack(boot))


def images_only(a: SeedScores, b: SeedScores) -> bool:
    d = (a.boot - b.boot).mean(axis=0)
    lo, hi = np.quantile(d[np.isfinite(d)], [ALPHA / 2, 1 - ALPHA / 2])
    return bool(lo > 0 or hi < 0)


def two_level(a: SeedScores, b: SeedScores, paired: bool, rng) -> bool:
    s, n_boot = len(a.full), a.boot.shape[1]
    ia = rng.integers(0, s, (n_boot, s))
    ib = ia if paired else rng.integers(0, s, (n_boot, s))
    cols = np.arange(n_boot)[:, None]
    d = a.boot[ia, cols].mean(axis=1) - b.boot[ib, cols].mean(axis=1)
    lo, hi = np.quantile(d[np.isfinite(d)], [ALPHA / 2, 1 - ALPHA / 2])
    return bool(lo > 0 or hi < 0)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--studies", type=int, default=400)
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--resamples", type=int, default=200)
    args = p.parse_args()
    setup = SimulationSetup(n_images=32)
    cells = [
        ("detect", True, 0.0), ("detect", True, 1.0), ("detect", False, 0.0), ("detect", False, 2.0),
        ("segment", True, 0.0), ("segment", True, 0.8), ("segment", False, 0.0), ("segment", False, 2.0),
    ]  # fmt: skip
    print(
        f"{args.studies} simulated studies per row, {args.seeds} seeds, {setup.n_images} test images, "
        f"{args.resamples} image resamples, alpha {ALPHA}\n"
    )
    print(
        "| task | seeds | gap (logit) | mean score gap | seeds+images | images only | two-level bootstrap |"
    )
    print("|:--|:--|--:|--:|--:|--:|--:|")
    start = time.perf_counter()
    for task, paired, gap in cells:
        rng = np.random.default_rng(0)
        hits = np.zeros(3)
        deltas = []
        for k in range(args.studies):
            scene = simulate_scene(setup, rng)
            q = run_qualities({"a": 0.0, "b": gap}, args.seeds, setup, paired, rng)
            w = resample_counts(setup.n_images, args.resamples, k).astype(np.float64)
            a = scores(task, scene, q["a"], w, setup, rng)
            b = scores(task, scene, q["b"], w, setup, rng)
            d = difference(b, a, paired, n_images=setup.n_images)
            deltas.append(d.delta)
            hits += [d.significant(ALPHA), images_only(b, a), two_level(b, a, paired, rng)]
        rates = hits / args.studies
        kind = "A/A (false positives)" if gap == 0 else "A/B (power)"
        print(
            f"| {task} {kind} | {'shared' if paired else 'independent'} | {gap:g} | "
            f"{np.mean(deltas):.3f} | {rates[0]:.3f} | {rates[1]:.3f} | {rates[2]:.3f} |"
        )
    print(f"\n{time.perf_counter() - start:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
