"""Simulated task results with known seed and image variance, to calibrate the comparisons.

A simulated study has test images of varying difficulty and, per method and seed, a run quality
(the task model a seed trains). From them it draws what the task stages save: per-image
detections (ground truth and scored predictions, `detection.ap.ImageDetections`) and per-image
segmentation confusion counts. The report's scoring (`report.significance`) then turns
them into seed scores and bootstrap resamples exactly as for real runs, and
`report.comparison` into differences, so the false-positive rate (A/A: two methods of the
same quality) and the power (A/B: a known gap) of the whole chain can be measured
(tests/report/test_report_calibration.py, benchmarks/bench_calibration.py).

Model of a run's quality on the logit scale: method level + seed effect + method-seed
interaction; the seed effect is shared by every method of a seed in a *paired* design (one task
model per seed, frozen / finetune) and drawn afresh per method otherwise (retrain). Each
object (detection) or class region (segmentation) is found with probability
sigmoid(quality + image difficulty + noise), so image difficulty is shared by all runs and the
noise is each run's own.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from detection.ap import ImageDetections


@dataclass(frozen=True)
class SimulationSetup:
    """Sizes and variance components of a simulated study (logit scale).

    n_images: test images; n_classes: detection classes (segmentation adds a background class);
    seed_sd: the seed effect shared by a seed's methods (paired) or each run's own (unpaired);
    interaction_sd: method-seed interaction (what remains of training noise in a paired design);
    image_sd: difficulty of an image, shared by every run; noise_sd: per object and run.
    """

    n_images: int = 32
    n_classes: int = 3
    seed_sd: float = 0.5
    interaction_sd: float = 0.15
    image_sd: float = 0.8
    noise_sd: float = 0.8
    objects_per_image: float = 3.0
    false_positives_per_image: float = 2.0


@dataclass
class SimulatedScene:
    """The fixed part of a study: ground truth and image difficulty."""

    gt: list[np.ndarray]  # per image (G, 5) [cls, x1, y1, x2, y2]
    difficulty: np.ndarray  # (N,)
    class_pixels: np.ndarray  # (N, C + 1) truth pixels per segmentation class (0 = background)


def simulate_scene(setup: SimulationSetup, rng: np.random.Generator) -> SimulatedScene:
    gt = []
    for _ in range(setup.n_images):
        n = max(1, int(rng.poisson(setup.objects_per_image)))
        cls = rng.integers(0, setup.n_classes, n)
        # boxes on a grid so that no two overlap (matching is then unambiguous)
        x1 = (np.arange(n) % 8) * 40.0
        y1 = (np.arange(n) // 8) * 40.0
        gt.append(np.column_stack([cls, x1, y1, x1 + 30.0, y1 + 30.0]).astype(np.float64))
    pixels = rng.integers(200, 2000, size=(setup.n_images, setup.n_classes + 1))
    pixels[:, 0] *= 10  # background dominates
    return SimulatedScene(
        gt=gt, difficulty=rng.normal(0.0, setup.image_sd, setup.n_images), class_pixels=pixels
    )


def run_qualities(
    method_levels: dict[str, float],
    seeds: int,
    setup: SimulationSetup,
    paired: bool,
    rng: np.random.Generator,
) -> dict[str, np.ndarray]:
    """method -> (seeds,) run quality: level + seed effect (shared when paired) + interaction."""
    shared = rng.normal(0.0, setup.seed_sd, seeds)
    out = {}
    for method, level in method_levels.items():
        seed_effect = shared if paired else rng.normal(0.0, setup.seed_sd, seeds)
        out[method] = level + seed_effect + rng.normal(0.0, setup.interaction_sd, seeds)
    return out


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def simulate_detections(
    scene: SimulatedScene, quality: float, setup: SimulationSetup, rng: np.random.Generator
) -> list[ImageDetections]:
    """One run's per-image detections: found objects score high, false positives lower."""
    gt = np.concatenate(scene.gt)
    image = np.repeat(np.arange(len(scene.gt)), [len(g) for g in scene.gt])
    logit = quality + scene.difficulty[image] + rng.normal(0.0, setup.noise_sd, len(gt))
    found = rng.random(len(gt)) < _sigmoid(logit)
    score = _sigmoid(logit + rng.normal(0.0, 0.5, len(gt)))
    tp = np.column_stack([gt[:, 0], score, gt[:, 1:5]])[found]
    n_fp = rng.poisson(setup.false_positives_per_image, len(scene.gt))
    fp_image = np.repeat(np.arange(len(scene.gt)), n_fp)
    rank = np.arange(len(fp_image)) - np.repeat(np.cumsum(n_fp) - n_fp, n_fp)
    fp_x = 400.0 + 40.0 * rank  # away from every ground-truth box
    fp = np.column_stack(
        [
            rng.integers(0, setup.n_classes, len(fp_image)),
            _sigmoid(rng.normal(-1.0 - quality, 1.0, len(fp_image))),
            fp_x,
            np.zeros(len(fp_image)),
            fp_x + 30.0,
            np.full(len(fp_image), 30.0),
        ]
    )
    pred = np.concatenate([tp, fp])
    owner = np.concatenate([image[found], fp_image])
    order = np.argsort(owner, kind="stable")
    bounds = np.searchsorted(owner[order], np.arange(1, len(scene.gt)))
    return [
        ImageDetections(gt=g, pred=p)
        for g, p in zip(scene.gt, np.split(pred[order], bounds), strict=True)
    ]


def simulate_confusion(
    scene: SimulatedScene, quality: float, setup: SimulationSetup, rng: np.random.Generator
) -> np.ndarray:
    """One run's (N, C, C) confusion counts: a share sigmoid(...) of each class's pixels right,
    the rest spread evenly over the other classes."""
    n, c = scene.class_pixels.shape
    logit = quality + scene.difficulty[:, None] + rng.normal(0.0, setup.noise_sd, (n, c))
    right = rng.binomial(scene.class_pixels, _sigmoid(logit))
    wrong = scene.class_pixels - right
    conf = np.zeros((n, c, c), dtype=np.int64)
    for k in range(c):
        others = [j for j in range(c) if j != k]
        conf[:, k, k] = right[:, k]
        conf[:, k, others] = rng.multinomial(wrong[:, k], np.full(c - 1, 1.0 / (c - 1)))
    return conf
