"""Task statistics with training variance: differences to the baselines, the best methods, and
the known effects of the synthetic data.

Per task, every run (method x seed) is scored per class on the full test set and on B bootstrap
resamples of the test images (drawn once with `ReportConfig.seed` on the images every run shares,
so every method and seed sees the same resampled sets): detection AP50 from predictions.json
(`detection.ap`, the same AP the detection stage reports as mAP50) and segmentation IoU from
the summed per-image confusion counts of confusion.npz. Scores on the day or night images only
are the same computation with the other images weighted 0. `report.comparison` turns these
into differences that include the seed-to-seed training variance:

- against each baseline (`ReportConfig.baselines`): delta, its interval and p-value;
- against the best method of the task: which methods cannot be told apart from it;
- the known effects the synthetic manifest records (`Manifest.modality_visibility`): people at
  night seen in infrared only, bicycles, lane markings and curbs in visible light only.

Under the `frozen` and `finetune` protocols every method of a seed is scored by (or starts from)
that seed's shared task model, so differences are taken within a seed; under `retrain` seeds are
independent trainings and each method's own seed variance counts.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from detection.ap import average_precision, match_detections
from mmif.iou import iou_from_confusion
from mmif.layout import condition_of
from mmif.logging_utils import progress_bar
from mmif.protocol import is_paired
from report.comparison import (
    Difference,
    SeedScores,
    best_set,
    difference,
    seed_std_of_differences,
)
from report.config import ReportConfig
from report.loading import (
    ResultsError,
    SeedRun,
    load_confusion,
)
from report.stats import nanmean_last, resample_counts

log = logging.getLogger(__name__)

#: marks of significant gains, one per baseline in config order
GAIN_MARKS = ("*", "+", "#", "^", "~")
#: the statistic tested per task, and its per-class counterpart
TESTED_SCORE = {"detect": "mAP50", "segment": "mIoU"}
PER_CLASS_SCORE = {"detect": "AP50", "segment": "IoU"}
#: the subset of test images of every headline score
ALL = "all"
COLUMNS = [
    "task", "score", "method", "baseline", "protocol", "pairing", "n_seeds", "n_images",
    "method_value", "baseline_value", "delta", "ci_low", "ci_high", "p_value", "seed_sd",
    "se_seeds", "se_images", "df", "significant", "verdict", "mark",
]  # fmt: skip
BEST_COLUMNS = [
    "task", "score", "method", "protocol", "value", "best", "delta_to_best", "ci_low",
    "ci_high", "p_value", "indistinguishable",
]  # fmt: skip
SANITY_COLUMNS = [
    "task", "effect", "class", "images", "expected", "better", "worse", "better_value",
    "worse_value", "delta", "ci_low", "ci_high", "p_value", "seed_sd", "detected",
]  # fmt: skip


@dataclass
class TaskStatistics:
    """Per-class scores of every run on the full test set and on B resampled sets, per subset.

    full[method][seed][subset]: (C,) per-class value; boot[...]: (B, C). Subsets: "all" and,
    when every test image names its condition, "day" and "night". mean_classes[method]: the
    class indices averaged into the headline score (NaN classes left out).
    """

    task: str
    stems: list[str]
    classes: list[str]
    protocols: dict[str, str] = field(default_factory=dict)
    full: dict[str, dict[int, dict[str, np.ndarray]]] = field(default_factory=dict)
    boot: dict[str, dict[int, dict[str, np.ndarray]]] = field(default_factory=dict)
    mean_classes: dict[str, np.ndarray] = field(default_factory=dict)

    @property
    def score(self) -> str:
        return TESTED_SCORE[self.task]

    @property
    def methods(self) -> list[str]:
        return list(self.full)

    def scores(self, method: str, class_name: str | None = None, subset: str = ALL) -> SeedScores:
        """SeedScores of the headline score (class_name None) or of one class on a subset."""
        full, boot = {}, {}
        for seed, by_subset in self.full[method].items():
            if class_name is None:
                keep = self.mean_classes[method]
                full[seed] = float(nanmean_last(by_subset[subset][keep]))
                boot[seed] = nanmean_last(self.boot[method][seed][subset][:, keep])
            else:
                c = self.classes.index(class_name)
                full[seed] = float(by_subset[subset][c])
                boot[seed] = self.boot[method][seed][subset][:, c]
        return SeedScores.from_mapping(full, boot)

    def paired(self, *methods: str) -> bool:
        """Whether the methods' seeds share task models (every one frozen or finetune)."""
        return all(is_paired(self.protocols.get(m, "retrain")) for m in methods)

    def subsets(self) -> list[str]:
        first = next(iter(next(iter(self.full.values())).values()))
        return list(first)


@dataclass
class Significance:
    comparisons: pd.DataFrame
    best: pd.DataFrame
    sanity: pd.DataFrame
    tasks: dict[str, TaskStatistics]
    notes: list[str]


def mark_for(baseline_index: int) -> str:
    return GAIN_MARKS[baseline_index % len(GAIN_MARKS)]


def _common_stems(
    stem_lists: dict[tuple[str, int], list[str]],
    task: str,
    notes: list[str],
    only: Sequence[str] | None = None,
) -> list[str]:
    """The test images every run shares (sorted), restricted to `only` when given."""
    sets = [set(s) for s in stem_lists.values()]
    common = set.intersection(*sets) if sets else set()
    if any(len(s) != len(common) for s in sets):
        notes.append(
            f"{task}: runs cover different test images; the statistics use the {len(common)} images all runs share"
        )
    if only is not None:
        common &= set(only)
    return sorted(common)


def condition_weights(stems: list[str]) -> dict[str, np.ndarray]:
    """subset -> (N,) 0/1 image weights: "all", plus "day" / "night" when every stem names one."""
    out = {ALL: np.ones(len(stems))}
    labels = [condition_of(s) for s in stems]
    if labels and all(labels) and len(set(labels)) > 1:
        arr = np.asarray(labels)
        for cond in ("day", "night"):
            out[cond] = (arr == cond).astype(np.float64)
    return out


def _protocol(run: SeedRun) -> str:
    return str(run.metrics.get("protocol") or "retrain")


def _protocols(runs: dict[str, dict[int, SeedRun]], notes: list[str], task: str) -> dict[str, str]:
    out = {}
    for method, seeds in runs.items():
        found = sorted({_protocol(r) for r in seeds.values()})
        if len(found) > 1:
            notes.append(
                f"{task}/{method}: seeds under different protocols ({', '.join(found)}); "
                "compared as independent trainings"
            )
            out[method] = "retrain"
        else:
            out[method] = found[0]
    return out


def detection_statistics(
    runs: dict[str, dict[int, SeedRun]],
    cfg: ReportConfig,
    notes: list[str],
    only: Sequence[str] | None = None,
) -> TaskStatistics | None:
    """Per-class AP50 of every run on the full test set and on the resampled sets.

    only: score these test images only (a subset of the test split; benchmarks/bench_task_noise.py).
    """
    preds = {}
    for method, seeds in runs.items():
        for seed, run in seeds.items():
            predictions = run.predictions
            if predictions is None:
                notes.append(
                    f"detect/{method}/seed_{seed}: no predictions.json, left out of the statistics"
                )
                continue
            preds[(method, seed)] = predictions
    if not preds:
        return None
    first_key, first = next(iter(preds.items()))
    for key, p in preds.items():
        if p.classes != first.classes:
            raise ResultsError(
                f"detect/{key[0]}/seed_{key[1]}/predictions.json: classes {p.classes} differ from "
                f"{first.classes} of detect/{first_key[0]}/seed_{first_key[1]}; re-run `mmif detect` on one dataset"
            )
    stems = _common_stems({k: p.stems for k, p in preds.items()}, "detect", notes, only)
    if not stems:
        notes.append("detect: the runs share no test image; no statistics")
        return None
    weights = resample_counts(len(stems), cfg.bootstrap_samples, cfg.seed).astype(np.float64)
    subsets = condition_weights(stems)
    out = TaskStatistics("detect", stems, list(first.classes), _protocols(runs, notes, "detect"))
    for (method, seed), p in progress_bar(
        preds.items(), desc="bootstrap detect", unit="run", disable=len(preds) < 4
    ):
        by_stem = p.by_stem()
        matched = match_detections([by_stem[s] for s in stems], len(p.classes), 0.5, cfg.max_dets)
        out.full.setdefault(method, {})[seed] = {
            name: average_precision(matched, w) for name, w in subsets.items()
        }
        out.boot.setdefault(method, {})[seed] = {
            name: average_precision(matched, weights * w) for name, w in subsets.items()
        }
        out.mean_classes[method] = np.arange(len(p.classes))
    return out


def segmentation_statistics(
    runs: dict[str, dict[int, SeedRun]],
    cfg: ReportConfig,
    notes: list[str],
    only: Sequence[str] | None = None,
) -> TaskStatistics | None:
    """Per-class IoU from summed confusion counts on the full test set and on resampled sets
    (only: these test images only)."""
    confs = {}
    for method, seeds in runs.items():
        for seed, run in seeds.items():
            path = run.file("confusion.npz")
            if path is None:
                notes.append(
                    f"segment/{method}/seed_{seed}: no confusion.npz, left out of the statistics"
                )
                continue
            confs[(method, seed)] = (load_confusion(path), run)
    if not confs:
        return None
    stems = _common_stems({k: c.stems for k, (c, _) in confs.items()}, "segment", notes, only)
    if not stems:
        notes.append("segment: the runs share no test image; no statistics")
        return None
    weights = resample_counts(len(stems), cfg.bootstrap_samples, cfg.seed).astype(np.float64)
    subsets = condition_weights(stems)
    first = next(iter(confs.values()))[0]
    out = TaskStatistics(
        "segment", stems, list(first.class_names), _protocols(runs, notes, "segment")
    )
    for (method, seed), (conf, run) in confs.items():
        if conf.class_names != first.class_names:
            raise ResultsError(
                f"segment/{method}/seed_{seed}/confusion.npz: classes {conf.class_names} differ "
                f"from {first.class_names}; re-run `mmif segment` on one dataset"
            )
        counts = conf.reindexed(stems).astype(np.float64)
        c = counts.shape[1]
        flat = counts.reshape(len(stems), c * c)
        out.full.setdefault(method, {})[seed] = {
            name: iou_from_confusion((w @ flat).reshape(c, c)) for name, w in subsets.items()
        }
        out.boot.setdefault(method, {})[seed] = {
            name: iou_from_confusion(((weights * w) @ flat).reshape(-1, c, c))
            for name, w in subsets.items()
        }
        out.mean_classes[method] = _miou_classes(conf.class_names, run)
    return out


def _miou_classes(class_names: list[str], run: SeedRun) -> np.ndarray:
    """Classes averaged into mIoU: those metrics.json lists per class (so the recomputed value
    follows the segment stage's choice, e.g. with or without background), else all."""
    listed = [n for n in run.per_class if n in class_names]
    if not listed:
        return np.arange(len(class_names))
    return np.array([class_names.index(n) for n in listed])


def _pairing(d: Difference) -> str:
    return "within seed (shared models)" if d.paired else "independent seeds"


def compare(stats: TaskStatistics, baselines: list[str], cfg: ReportConfig) -> list[dict]:
    """One row per (method, baseline) present in `stats`."""
    rows = []
    n_images = len(stats.stems)
    for bi, baseline in enumerate(baselines):
        if baseline not in stats.full:
            continue
        base_scores = stats.scores(baseline)
        for method in stats.methods:
            if method == baseline:
                continue
            m_scores = stats.scores(method)
            paired = stats.paired(method, baseline)
            d = difference(m_scores, base_scores, paired, cfg.ci_level, n_images)
            significant = d.significant(cfg.alpha)
            verdict = ("gain" if d.delta > 0 else "loss") if significant else "n.s."
            if not d.training_variance:
                verdict = "untested (one seed)"
            rows.append(
                {
                    "task": stats.task,
                    "score": stats.score,
                    "method": method,
                    "baseline": baseline,
                    "protocol": stats.protocols.get(method, "retrain"),
                    "pairing": _pairing(d),
                    "n_seeds": min(d.n_seeds),
                    "n_images": n_images,
                    "method_value": d.a_mean,
                    "baseline_value": d.b_mean,
                    "delta": d.delta,
                    "ci_low": d.ci_low,
                    "ci_high": d.ci_high,
                    "p_value": d.p_value,
                    "seed_sd": seed_std_of_differences(m_scores, base_scores)
                    if d.paired
                    else np.nan,
                    "se_seeds": d.se_seed,
                    "se_images": d.se_image,
                    "df": d.df,
                    "significant": significant,
                    "verdict": verdict,
                    "mark": mark_for(bi) if verdict == "gain" else "",
                }
            )
    return rows


def best_rows(stats: TaskStatistics, cfg: ReportConfig) -> list[dict]:
    """The best method of the task and, per method, whether it is indistinguishable from it."""
    scores = {m: stats.scores(m) for m in stats.methods}
    result = best_set(
        scores, stats.paired(*stats.methods), cfg.alpha, cfg.ci_level, len(stats.stems)
    )
    if result is None:
        return []
    rows = []
    for method in [result.best, *sorted(result.against_best, key=lambda m: -scores[m].mean)]:
        d = result.against_best.get(method)
        rows.append(
            {
                "task": stats.task,
                "score": stats.score,
                "method": method,
                "protocol": stats.protocols.get(method, "retrain"),
                "value": scores[method].mean,
                "best": result.best,
                "delta_to_best": -d.delta if d else 0.0,
                "ci_low": -d.ci_high if d else 0.0,
                "ci_high": -d.ci_low if d else 0.0,
                "p_value": d.p_value if d else np.nan,
                "indistinguishable": method in result.indistinguishable,
            }
        )
    return rows


@dataclass(frozen=True)
class KnownEffect:
    """A difference the dataset was built to show: `better` beats `worse` on `class_name`
    over the `subset` images (e.g. ir > vis for people at night)."""

    class_name: str
    subset: str
    better: str
    worse: str

    @property
    def label(self) -> str:
        where = "" if self.subset == ALL else f" at {self.subset}"
        return f"{self.class_name}{where}: {self.better} > {self.worse}"


def known_effects(visibility: dict[str, dict[str, bool]], classes: list[str]) -> list[KnownEffect]:
    """Effects implied by the manifest's record of which modality sees which class.

    visibility: class -> {"ir", "vis_day", "vis_night"} (or {"ir", "vis"}) booleans, as the
    synthetic generator writes it. A class seen in infrared but not in visible light at night
    gives "ir > vis at night" (people); one seen in visible light but not in infrared gives
    "vis > ir" over the images where visible light sees it (bicycles, lane markings, curbs).
    """
    out = []
    for name in classes:
        v = visibility.get(name)
        if not v:
            continue
        ir = bool(v.get("ir"))
        day = bool(v.get("vis_day", v.get("vis")))
        night = bool(v.get("vis_night", v.get("vis")))
        if ir and not night:
            out.append(KnownEffect(name, "night" if day else ALL, "ir", "vis"))
        elif ir and not day:
            out.append(KnownEffect(name, "day", "ir", "vis"))
        if not ir and (day or night):
            subset = ALL if day and night else ("day" if day else "night")
            out.append(KnownEffect(name, subset, "vis", "ir"))
    return out


def sanity_rows(
    stats: TaskStatistics, visibility: dict[str, dict[str, bool]], cfg: ReportConfig
) -> list[dict]:
    """Each known effect of the data with its interval and whether the study detects it."""
    rows = []
    available = stats.subsets()
    for effect in known_effects(visibility, stats.classes):
        if effect.better not in stats.full or effect.worse not in stats.full:
            continue
        if effect.subset not in available:
            continue
        a = stats.scores(effect.better, effect.class_name, effect.subset)
        b = stats.scores(effect.worse, effect.class_name, effect.subset)
        d = difference(
            a, b, stats.paired(effect.better, effect.worse), cfg.ci_level, len(stats.stems)
        )
        rows.append(
            {
                "task": stats.task,
                "effect": effect.label,
                "class": effect.class_name,
                "images": effect.subset,
                "expected": f"{effect.better} > {effect.worse}",
                "better": effect.better,
                "worse": effect.worse,
                "better_value": d.a_mean,
                "worse_value": d.b_mean,
                "delta": d.delta,
                "ci_low": d.ci_low,
                "ci_high": d.ci_high,
                "p_value": d.p_value,
                "seed_sd": seed_std_of_differences(a, b) if d.paired else np.nan,
                "detected": bool(d.significant(cfg.alpha) and d.delta > 0),
            }
        )
    return rows


STATISTICS: dict[str, Callable[..., TaskStatistics | None]] = {
    "detect": detection_statistics,
    "segment": segmentation_statistics,
}


def significance(
    runs: dict[str, dict[str, dict[int, SeedRun]]],
    cfg: ReportConfig,
    visibility: dict[str, dict[str, bool]] | None = None,
) -> Significance:
    """Score every task that has runs; compare with the baselines, the best and known effects."""
    notes: list[str] = []
    tasks: dict[str, TaskStatistics] = {}
    rows: list[dict] = []
    best: list[dict] = []
    sanity: list[dict] = []
    if cfg.bootstrap_samples == 0:
        notes.append("bootstrap_samples is 0: no intervals or tests")
        return Significance(
            pd.DataFrame(columns=COLUMNS),
            pd.DataFrame(columns=BEST_COLUMNS),
            pd.DataFrame(columns=SANITY_COLUMNS),
            tasks,
            notes,
        )
    for task, fn in STATISTICS.items():
        task_runs = runs.get(task) or {}
        if not task_runs:
            continue
        stats = fn(task_runs, cfg, notes)
        if stats is None:
            continue
        tasks[task] = stats
        missing = [b for b in cfg.baselines if b not in stats.full]
        if missing:
            notes.append(
                f"{task}: baseline(s) {', '.join(missing)} have no runs; no comparison with them"
            )
        task_rows = compare(stats, list(cfg.baselines), cfg)
        rows.extend(task_rows)
        best.extend(best_rows(stats, cfg))
        if visibility:
            sanity.extend(sanity_rows(stats, visibility, cfg))
        log.info(
            "%s: %s on %d images x %d resamples, %d comparisons",
            task,
            stats.score,
            len(stats.stems),
            cfg.bootstrap_samples,
            len(task_rows),
        )
    return Significance(
        pd.DataFrame(rows, columns=COLUMNS),
        pd.DataFrame(best, columns=BEST_COLUMNS),
        pd.DataFrame(sanity, columns=SANITY_COLUMNS),
        tasks,
        notes,
    )
