"""Paired bootstrap of the tasks on fake detection and segmentation runs."""

from __future__ import annotations

import numpy as np

from mmif.report.config import ReportConfig
from mmif.report.loading import load_results
from mmif.report.significance import significance


def _cfg(**kw) -> ReportConfig:
    return ReportConfig(bootstrap_samples=kw.pop("bootstrap_samples", 300), **kw)


def test_better_method_gains_significantly(tmp_path, fake_tree_builder):
    tree = fake_tree_builder(
        tmp_path, {"vis": 0.3, "ir": 0.3, "good": 0.95}, n_images=30, write_images=False
    )
    sig = significance(load_results(tree.results).runs, _cfg())
    df = sig.comparisons.set_index(["task", "method", "baseline"])
    for task in ("detect", "segment"):
        row = df.loc[(task, "good", "vis")]
        assert row["delta"] > 0 and row["significant"] and row["verdict"] == "gain"
        assert row["mark"] == "*"  # first baseline
        assert df.loc[(task, "good", "ir"), "mark"] == "+"
        assert row["pairing"] == "by seed" and row["n_seeds"] == 2
        # the worse baseline loses against the better method the other way round
        assert df.loc[(task, "vis", "ir"), "verdict"] in ("n.s.", "gain", "loss")
    assert set(sig.tasks) == {"detect", "segment"}
    assert sig.tasks["detect"].boot["good"][0].shape == (300,)


def test_identical_methods_are_not_significant(tmp_path, fake_tree_builder):
    tree = fake_tree_builder(tmp_path, {"vis": 0.6, "twin": 0.6}, n_images=20, write_images=False)
    # make "twin" an exact copy of "vis" on both tasks
    import shutil

    for task in ("detect", "segment"):
        shutil.rmtree(tree.results / task / "twin")
        shutil.copytree(tree.results / task / "vis", tree.results / task / "twin")
    sig = significance(load_results(tree.results).runs, _cfg(baselines=["vis"]))
    for _, row in sig.comparisons.iterrows():
        assert row["delta"] == 0
        assert row["p_value"] == 1.0
        assert not row["significant"] and row["mark"] == ""


def test_same_seed_same_resamples(tmp_path, fake_tree_builder):
    tree = fake_tree_builder(
        tmp_path, {"vis": 0.5, "m": 0.7}, n_images=15, segment=False, write_images=False
    )
    runs = load_results(tree.results).runs
    a = significance(runs, _cfg(seed=5)).tasks["detect"].boot["m"][0]
    b = significance(runs, _cfg(seed=5)).tasks["detect"].boot["m"][0]
    c = significance(runs, _cfg(seed=6)).tasks["detect"].boot["m"][0]
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


def test_no_shared_seed_falls_back_to_seed_means(tmp_path, fake_tree_builder):
    tree = fake_tree_builder(
        tmp_path, {"vis": 0.5, "m": 0.9}, n_images=15, segment=False, write_images=False
    )
    (tree.results / "detect" / "m" / "seed_0").rename(tree.results / "detect" / "m" / "seed_7")
    (tree.results / "detect" / "m" / "seed_1").rename(tree.results / "detect" / "m" / "seed_8")
    sig = significance(load_results(tree.results).runs, _cfg(baselines=["vis"]))
    row = sig.comparisons.iloc[0]
    assert row["pairing"].startswith("seed means")


def test_zero_samples_skips_the_test(tmp_path, fake_tree_builder):
    tree = fake_tree_builder(tmp_path, {"vis": 0.5, "m": 0.9}, n_images=5, write_images=False)
    sig = significance(load_results(tree.results).runs, _cfg(bootstrap_samples=0))
    assert sig.comparisons.empty and sig.notes
