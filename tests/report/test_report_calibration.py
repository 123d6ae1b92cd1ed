"""Calibration of the seed-and-image comparison on simulated studies (report.simulation).

A/A: two methods of the same quality, three seeds, trained with shared (paired, frozen /
finetune) or independent (retrain) seeds: at alpha = 0.05 the test may call at most 8% of 200
simulated comparisons significant. A/B: a known gap is detected in most simulations; the power
is printed (`pytest -s` shows it; benchmarks/bench_calibration.py prints the full table).
"""

from __future__ import annotations

import numpy as np
import pytest

from detection.ap import match_detections, mean_average_precision
from mmif.iou import iou_from_confusion
from report.comparison import SeedScores, difference
from report.simulation import (
    SimulationSetup,
    run_qualities,
    simulate_confusion,
    simulate_detections,
    simulate_scene,
)
from report.stats import nanmean_last, resample_counts

N_SIMULATIONS = 200
SEEDS = 3
RESAMPLES = 100
ALPHA = 0.05
SETUP = SimulationSetup(n_images=24)


def _scores(task: str, scene, qualities: np.ndarray, weights: np.ndarray, rng) -> SeedScores:
    full, boot = [], []
    for q in qualities:
        if task == "detect":
            matched = match_detections(
                simulate_detections(scene, q, SETUP, rng), SETUP.n_classes, 0.5, 100
            )
            full.append(float(mean_average_precision(matched)))
            boot.append(mean_average_precision(matched, weights))
        else:
            counts = simulate_confusion(scene, q, SETUP, rng).astype(np.float64)
            c = counts.shape[1]
            flat = counts.reshape(len(counts), c * c)
            full.append(float(nanmean_last(iou_from_confusion(flat.sum(0).reshape(c, c)))))
            boot.append(nanmean_last(iou_from_confusion((weights @ flat).reshape(-1, c, c))))
    return SeedScores(tuple(range(len(qualities))), np.array(full), np.stack(boot))


def rejection_rate(task: str, gap: float, paired: bool, seed: int = 0) -> tuple[float, float]:
    """Share of simulated studies in which B (level `gap`) differs significantly from A, and
    the mean difference of the score (mAP50 or mIoU) that the gap makes."""
    rng = np.random.default_rng(seed)
    rejected, deltas = 0, []
    for sim in range(N_SIMULATIONS):
        scene = simulate_scene(SETUP, rng)
        q = run_qualities({"a": 0.0, "b": gap}, SEEDS, SETUP, paired, rng)
        weights = resample_counts(SETUP.n_images, RESAMPLES, sim).astype(np.float64)
        a = _scores(task, scene, q["a"], weights, rng)
        b = _scores(task, scene, q["b"], weights, rng)
        d = difference(b, a, paired, n_images=SETUP.n_images)
        rejected += d.significant(ALPHA)
        deltas.append(d.delta)
    return rejected / N_SIMULATIONS, float(np.mean(deltas))


@pytest.mark.parametrize("task", ["detect", "segment"])
@pytest.mark.parametrize("paired", [True, False], ids=["shared-seeds", "independent-seeds"])
def test_aa_false_positive_rate(task: str, paired: bool) -> None:
    rate, _ = rejection_rate(task, 0.0, paired)
    print(f"\nA/A {task} {'paired' if paired else 'unpaired'}: false-positive rate {rate:.3f}")
    assert rate <= 0.08


@pytest.mark.parametrize(
    ("task", "paired", "gap"),
    [
        ("detect", True, 1.0),
        ("segment", True, 0.8),
        ("detect", False, 2.0),
        ("segment", False, 2.0),
    ],
)
def test_ab_known_gap_is_detected(task: str, paired: bool, gap: float) -> None:
    power, delta = rejection_rate(task, gap, paired, seed=1)
    print(
        f"\nA/B {task} {'paired' if paired else 'unpaired'}: gap {gap} logits "
        f"(mean score difference {delta:.3f}): power {power:.3f}"
    )
    assert power >= 0.5
