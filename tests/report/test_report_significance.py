"""Task statistics on fake runs: differences to baselines, the best methods, known effects."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from report.config import ReportConfig
from report.loading import load_results
from report.significance import (
    TaskStatistics,
    best_rows,
    known_effects,
    sanity_rows,
    significance,
)


def _cfg(**kw) -> ReportConfig:
    return ReportConfig(bootstrap_samples=kw.pop("bootstrap_samples", 300), **kw)


@pytest.mark.parametrize("protocol", [None, "frozen"])
def test_better_method_gains_significantly(tmp_path, fake_tree_builder, protocol):
    tree = fake_tree_builder(
        tmp_path,
        {"vis": 0.3, "ir": 0.3, "good": 0.95},
        seeds=(0, 1, 2),
        n_images=30,
        write_images=False,
        protocol=protocol,
    )
    sig = significance(load_results(tree.results).runs, _cfg())
    df = sig.comparisons.set_index(["task", "method", "baseline"])
    for task in ("detect", "segment"):
        row = df.loc[(task, "good", "vis")]
        assert row["delta"] > 0 and row["significant"] and row["verdict"] == "gain"
        assert row["ci_low"] > 0 and row["ci_low"] < row["delta"] < row["ci_high"]
        assert row["mark"] == "*"  # first baseline
        assert df.loc[(task, "good", "ir"), "mark"] == "+"
        assert row["n_seeds"] == 3
        # results without a protocol key are from-scratch trainings: seeds are not paired
        assert row["pairing"] == (
            "within seed (shared models)" if protocol else "independent seeds"
        )
        assert row["protocol"] == (protocol or "retrain")
        assert np.isfinite(row["se_seeds"]) and np.isfinite(row["se_images"])
    assert set(sig.tasks) == {"detect", "segment"}
    assert sig.tasks["detect"].boot["good"][0]["all"].shape == (300, 2)
    best = sig.best.set_index(["task", "method"])
    for task in ("detect", "segment"):
        assert best.loc[(task, "good"), "best"] == "good"
        assert best.loc[(task, "good"), "indistinguishable"]
        assert not best.loc[(task, "vis"), "indistinguishable"]


def test_identical_methods_are_not_significant(tmp_path, fake_tree_builder):
    tree = fake_tree_builder(
        tmp_path, {"vis": 0.6, "twin": 0.6}, n_images=20, write_images=False, protocol="frozen"
    )
    for task in ("detect", "segment"):
        shutil.rmtree(tree.results / task / "twin")
        shutil.copytree(tree.results / task / "vis", tree.results / task / "twin")
    sig = significance(load_results(tree.results).runs, _cfg(baselines=["vis"]))
    for _, row in sig.comparisons.iterrows():
        assert row["delta"] == 0 and row["p_value"] == 1.0
        assert row["ci_low"] == 0 == row["ci_high"]
        assert not row["significant"] and row["mark"] == ""
    assert sig.best["indistinguishable"].all()


def test_same_seed_same_resamples(tmp_path, fake_tree_builder):
    tree = fake_tree_builder(
        tmp_path, {"vis": 0.5, "m": 0.7}, n_images=15, segment=False, write_images=False
    )
    runs = load_results(tree.results).runs
    a = significance(runs, _cfg(seed=5)).tasks["detect"].boot["m"][0]["all"]
    b = significance(runs, _cfg(seed=5)).tasks["detect"].boot["m"][0]["all"]
    c = significance(runs, _cfg(seed=6)).tasks["detect"].boot["m"][0]["all"]
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


def test_shared_models_without_shared_seed_are_compared_as_independent(tmp_path, fake_tree_builder):
    tree = fake_tree_builder(
        tmp_path,
        {"vis": 0.5, "m": 0.9},
        n_images=15,
        segment=False,
        write_images=False,
        protocol="frozen",
    )
    (tree.results / "detect" / "m" / "seed_0").rename(tree.results / "detect" / "m" / "seed_7")
    (tree.results / "detect" / "m" / "seed_1").rename(tree.results / "detect" / "m" / "seed_8")
    sig = significance(load_results(tree.results).runs, _cfg(baselines=["vis"]))
    assert sig.comparisons.iloc[0]["pairing"] == "independent seeds"


def test_one_seed_is_never_significant(tmp_path, fake_tree_builder):
    tree = fake_tree_builder(
        tmp_path, {"vis": 0.2, "m": 0.95}, seeds=(0,), n_images=30, write_images=False
    )
    sig = significance(load_results(tree.results).runs, _cfg(baselines=["vis"]))
    assert (sig.comparisons["verdict"] == "untested (one seed)").all()
    assert not sig.comparisons["significant"].any()


def test_zero_samples_skips_the_test(tmp_path, fake_tree_builder):
    tree = fake_tree_builder(tmp_path, {"vis": 0.5, "m": 0.9}, n_images=5, write_images=False)
    sig = significance(load_results(tree.results).runs, _cfg(bootstrap_samples=0))
    assert sig.comparisons.empty and sig.best.empty and sig.sanity.empty and sig.notes


def test_known_effects_follow_the_manifest():
    from preparation.synthetic import DET_CLASSES, MODALITY_VISIBILITY, SEG_CLASSES

    labels = {e.label for e in known_effects(MODALITY_VISIBILITY, DET_CLASSES)}
    assert labels == {"person at night: ir > vis", "bicycle: vis > ir"}
    labels = {e.label for e in known_effects(MODALITY_VISIBILITY, SEG_CLASSES)}
    assert labels == {
        "person at night: ir > vis",
        "bicycle: vis > ir",
        "lane_marking: vis > ir",
        "curb: vis > ir",
    }
    assert known_effects({}, DET_CLASSES) == []


def _stats(values: dict[str, list[list[float]]], subsets=("all", "night")) -> TaskStatistics:
    """TaskStatistics of one class over 3 seeds: values[method][seed] = per-subset AP; the
    bootstrap adds small image noise that every method shares."""
    rng = np.random.default_rng(0)
    noise = rng.normal(0, 0.01, 200)
    stats = TaskStatistics("detect", [f"{i}N" for i in range(20)], ["person"], {})
    for method, per_seed in values.items():
        stats.protocols[method] = "frozen"
        stats.mean_classes[method] = np.array([0])
        for seed, per_subset in enumerate(per_seed):
            stats.full.setdefault(method, {})[seed] = {
                s: np.array([v]) for s, v in zip(subsets, per_subset, strict=True)
            }
            stats.boot.setdefault(method, {})[seed] = {
                s: (v + noise + rng.normal(0, 0.005, 200))[:, None]
                for s, v in zip(subsets, per_subset, strict=True)
            }
    return stats


def test_sanity_rows_detect_the_expected_direction_only():
    visibility = {"person": {"ir": True, "vis_day": True, "vis_night": False}}
    cfg = _cfg()
    seen = _stats({"ir": [[0.6, 0.7], [0.62, 0.72], [0.58, 0.69]], "vis": [[0.4, 0.1]] * 3})
    (row,) = sanity_rows(seen, visibility, cfg)
    assert row["effect"] == "person at night: ir > vis" and row["images"] == "night"
    assert row["delta"] == pytest.approx(0.7033 - 0.1, abs=1e-3) and row["detected"]
    reversed_ = _stats({"ir": [[0.4, 0.1]] * 3, "vis": [[0.6, 0.7], [0.62, 0.72], [0.58, 0.69]]})
    (row,) = sanity_rows(reversed_, visibility, cfg)
    assert row["delta"] < 0 and not row["detected"]


def test_best_rows_keep_close_methods_and_drop_clearly_worse_ones():
    stats = _stats(
        {
            "a": [[0.70, 0.0], [0.72, 0.0], [0.71, 0.0]],
            "b": [[0.69, 0.0], [0.72, 0.0], [0.70, 0.0]],
            "c": [[0.30, 0.0], [0.31, 0.0], [0.29, 0.0]],
        }
    )
    rows = {r["method"]: r for r in best_rows(stats, _cfg())}
    assert rows["a"]["best"] == "a" and rows["a"]["indistinguishable"]
    assert rows["b"]["indistinguishable"] and not rows["c"]["indistinguishable"]
    assert rows["c"]["delta_to_best"] == pytest.approx(0.30 - 0.71, abs=1e-9)
    assert rows["c"]["ci_high"] < 0
