"""benchmarks/bench_task_noise.py --seed-blocks: each block of K seeds judged as its own study."""

from __future__ import annotations

from pathlib import Path

import pytest

from report.config import ReportConfig
from report.loading import load_results
from report.significance import STATISTICS
from tests.conftest import load_script

QUALITY = {"vis": 0.6, "ir": 0.5, "mean": 0.7}
CFG = ReportConfig(bootstrap_samples=2)
BASELINES = list(CFG.baselines)


@pytest.fixture(scope="module")
def bench():
    return load_script("benchmarks/bench_task_noise.py")


def study_stats(bench, results: Path, task: str):
    """The statistics of a whole study, as the script's main table computes them."""
    runs = load_results(results).task_runs(task)
    return STATISTICS[task](runs, CFG, [], only=bench.task_stems(results, task))


def study_worst(bench, results: Path, task: str) -> tuple[float, str]:
    """The largest seed std of a difference of a whole study, as the script's main table has it."""
    stats = study_stats(bench, results, task)
    return bench.worst(bench.noise_table(stats, BASELINES), BASELINES)


@pytest.mark.parametrize("task", ["segment", "detect"])
def test_each_seed_block_scores_as_a_study_of_its_seeds(bench, fake_tree_builder, tmp_path, task):
    # the fake runs of a seed are the same whichever other seeds the tree holds, so a study of
    # seeds 3-5 alone is what the block 3-5 of a six-seed study must report
    six = fake_tree_builder(tmp_path / "six", QUALITY, seeds=(0, 1, 2, 3, 4, 5), jitter=0.05)
    blocks = bench.seed_block_worst(study_stats(bench, six.results, task), 3, BASELINES)
    assert [b for b, _, _ in blocks] == [[0, 1, 2], [3, 4, 5]]
    for block, value, name in blocks:
        alone = fake_tree_builder(
            tmp_path / f"b{block[0]}", QUALITY, seeds=tuple(block), jitter=0.05
        )
        expected, expected_name = study_worst(bench, alone.results, task)
        assert value == pytest.approx(expected, abs=1e-12) and name == expected_name
    # the noisier block differs from the other: the blocks are not the whole study repeated
    assert blocks[0][1] != pytest.approx(blocks[1][1])


def test_seed_blocks_leave_a_remainder_out_and_need_two_seeds(
    bench, fake_tree_builder, tmp_path, capsys
):
    tree = fake_tree_builder(tmp_path, QUALITY, seeds=(0, 1, 2, 3, 4), jitter=0.05)
    stats = study_stats(bench, tree.results, "segment")
    blocks = bench.seed_block_worst(stats, 2, BASELINES)
    assert [b for b, _, _ in blocks] == [[0, 1], [2, 3]]
    assert bench.seed_block_worst(stats, 6, BASELINES) == []
    bench.print_seed_blocks(stats, 2, BASELINES)
    out = capsys.readouterr().out
    assert (
        "| 0 1 |" in out
        and "| 2 3 |" in out
        and "studies of 2 seeds within the budget of 0.02" in out
    )
    with pytest.raises(SystemExit):
        bench.main(["--results", str(tree.results), "--seed-blocks", "1"])
    assert "at least 2 seeds" in capsys.readouterr().err
