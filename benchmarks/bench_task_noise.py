"""Training noise of a finished study's task comparisons: the seed std of within-seed differences.

Under the `frozen` and `finetune` protocols every method of a seed is scored by that seed's
shared task model, so the comparison of two methods is a within-seed difference; its std over the
seeds is the training noise a rerun of the study would show (the issue-12 budget: at most 0.03 in
detection mAP50 and 0.02 in segmentation mIoU against `vis` and `ir`). This script reads a
finished study (results/detect/<method>/seed_<s>/predictions.json and
results/segment/<method>/seed_<s>/confusion.npz, the report's inputs), recomputes every run's
score with the report's code (`report.significance`) and prints per method its score, the
seed std of its difference to each baseline and the report's known-effect check. The largest
seed std comes with the chi-square interval of the true std behind it: with 3 seeds it spans a
factor of 12 (and the largest of several differences is biased upward), so a single study
rarely shows the budget met or missed; more seeds
(`--seeds` of `mmif segment-base` / `mmif segment` into a copy) narrow it.

--images N [N ...] scores the first N test images only (the synthetic test split's first 32
images are those of a study with `synthetic.n_test: 32`): how the noise shrinks with the size
of the test split. --blocks adds, for each N, the root mean square of the std over the disjoint
blocks of N images: a steadier estimate of what a study with N test images would measure.
--seed-blocks K splits the seeds into disjoint blocks of K (a study of 12 seeds makes four of 3)
and prints the largest seed std of each block: what separate studies of K seeds would each report,
and how many of them would meet the budget.

    .venv/bin/python benchmarks/bench_task_noise.py                       # the default study
    .venv/bin/python benchmarks/bench_task_noise.py --images 32 64 128 --blocks
    .venv/bin/python benchmarks/bench_task_noise.py --tasks segment --seed-blocks 3   # 6+ seeds
"""

from __future__ import annotations

import argparse
import logging
import math
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]

from mmif.layout import Manifest  # noqa: E402
from report.comparison import sd_interval, seed_std_of_differences  # noqa: E402
from report.config import ReportConfig  # noqa: E402
from report.loading import load_results  # noqa: E402
from report.significance import (  # noqa: E402
    STATISTICS,
    TaskStatistics,
    sanity_rows,
)

#: the issue-12 budget of the seed std of a within-seed difference, per task
BUDGET = {"detect": 0.03, "segment": 0.02}


def task_stems(results: Path, task: str) -> list[str]:
    """The test images every run of the task shares (sorted, as the report uses them)."""
    runs = load_results(results).task_runs(task)
    stats = STATISTICS[task](runs, ReportConfig(bootstrap_samples=2), [])
    return stats.stems if stats else []


def noise_table(
    stats: TaskStatistics, baselines: list[str], seeds: list[int] | None = None
) -> dict[str, dict[str, float]]:
    """method -> {"mean", "sd", "sd_<baseline>"...}: score and seed std of the differences,
    over `seeds` only when given (a seed's score does not depend on the other seeds)."""

    def scores_of(method: str):
        scores = stats.scores(method)
        return scores if seeds is None else scores.select([s for s in seeds if s in scores.seeds])

    out = {}
    for method in stats.methods:
        scores = scores_of(method)
        row = {"mean": scores.mean, "sd": float(np.nanstd(scores.full, ddof=1))}
        for b in baselines:
            if b in stats.full and b != method:
                row[f"sd_{b}"] = seed_std_of_differences(scores, scores_of(b))
        out[method] = row
    return out


def worst(table: dict[str, dict[str, float]], baselines: list[str]) -> tuple[float, str]:
    """The largest seed std of a difference to a baseline, and which one."""
    best_value, best_name = -math.inf, ""
    for method, row in table.items():
        for b in baselines:
            v = row.get(f"sd_{b}", math.nan)
            if np.isfinite(v) and v > best_value:
                best_value, best_name = v, f"{method} - {b}"
    return best_value, best_name


def print_study(stats: TaskStatistics, cfg: ReportConfig, visibility: dict | None) -> None:
    table = noise_table(stats, list(cfg.baselines))
    seeds = sorted(next(iter(stats.full.values())))
    print(
        f"\n{stats.task} ({stats.score}), protocol {', '.join(sorted(set(stats.protocols.values())))}, "
        f"seeds {' '.join(map(str, seeds))}, {len(stats.stems)} test images "
        f"({stats.stems[0]} .. {stats.stems[-1]})"
    )
    header = f"| method | {stats.score} mean ± sd | " + " | ".join(
        f"sd of Δ vs {b}" for b in cfg.baselines
    )
    print(header + " |")
    print("|:--|--:|" + "--:|" * len(cfg.baselines))
    for method, row in table.items():
        cells = [
            f"{row.get(f'sd_{b}', math.nan):.3f}" if b != method else "" for b in cfg.baselines
        ]
        print(f"| {method} | {row['mean']:.3f} ± {row['sd']:.3f} | " + " | ".join(cells) + " |")
    value, name = worst(table, list(cfg.baselines))
    budget = BUDGET.get(stats.task)
    verdict = (
        "" if budget is None else (" (within" if value <= budget else " (above") + f" {budget})"
    )
    print(f"largest seed std of a difference: {value:.3f} ({name}){verdict}")
    lo, hi = sd_interval(value, len(seeds))
    if budget is not None and math.isfinite(lo):
        told = (
            "within the budget"
            if hi <= budget
            else "above the budget"
            if lo > budget
            else f"too few seeds ({len(seeds)}) to tell against {budget}"
        )
        print(
            f"  95% interval of its true seed std from {len(seeds)} seeds: [{lo:.3f}, {hi:.3f}], {told}"
        )
    if visibility:
        for row in sanity_rows(stats, visibility, cfg):
            print(
                f"known effect {row['effect']}: {row['delta']:+.3f} "
                f"[{row['ci_low']:+.3f}, {row['ci_high']:+.3f}], seed sd {row['seed_sd']:.3f}, "
                f"{'detected' if row['detected'] else 'NOT detected'}"
            )


def print_blocks(results: Path, task: str, stems: list[str], sizes: list[int], cfg) -> None:
    """RMS over disjoint blocks of N images of each method's seed std of differences."""
    runs = load_results(results).task_runs(task)
    quick = ReportConfig(bootstrap_samples=2, baselines=cfg.baselines, seed=cfg.seed)
    print(f"\n{task}: seed std of within-seed differences, RMS over disjoint blocks of N images")
    print("| N | blocks | largest RMS sd (method - baseline) | RMS over all differences |")
    print("|--:|--:|:--|--:|")
    for n in sizes:
        blocks = [stems[i : i + n] for i in range(0, len(stems) - n + 1, n)]
        if not blocks:
            continue
        squares: dict[str, list[float]] = {}
        for block in blocks:
            stats = STATISTICS[task](runs, quick, [], only=block)
            for method, row in noise_table(stats, list(cfg.baselines)).items():
                for b in cfg.baselines:
                    v = row.get(f"sd_{b}")
                    if v is not None and np.isfinite(v):
                        squares.setdefault(f"{method} - {b}", []).append(v * v)
        rms = {k: math.sqrt(float(np.mean(v))) for k, v in squares.items()}
        # a - b and b - a are the same difference: count each pair once in the overall RMS
        pairs = {tuple(sorted(k.split(" - "))): v for k, v in rms.items()}
        name = max(rms, key=rms.get)
        overall = math.sqrt(float(np.mean([v * v for v in pairs.values()])))
        print(f"| {n} | {len(blocks)} | {rms[name]:.3f} ({name}) | {overall:.3f} |")


def seed_block_worst(
    stats: TaskStatistics, size: int, baselines: list[str]
) -> list[tuple[list[int], float, str]]:
    """For each disjoint block of `size` seeds (in seed order; a remainder is left out): the
    block's seeds and the largest seed std of a within-seed difference to a baseline, with its
    name, as a study of those seeds alone would report it."""
    seeds = sorted({s for method in stats.methods for s in stats.scores(method).seeds})
    out = []
    for i in range(0, len(seeds) - size + 1, size):
        block = seeds[i : i + size]
        value, name = worst(noise_table(stats, baselines, seeds=block), baselines)
        out.append((block, value, name))
    return out


def print_seed_blocks(stats: TaskStatistics, size: int, baselines: list[str]) -> None:
    rows = seed_block_worst(stats, size, baselines)
    task = stats.task
    print(f"\n{task}: largest seed std of a within-seed difference per study of {size} seeds")
    if not rows:
        print(f"fewer than {size} seeds: no block")
        return
    budget = BUDGET.get(task)
    print("| seeds | largest sd (method - baseline) |")
    print("|:--|:--|")
    for block, value, name in rows:
        print(f"| {' '.join(map(str, block))} | {value:.3f} ({name}) |")
    if budget is not None:
        met = sum(value <= budget for _, value, _ in rows)
        print(f"{met} of {len(rows)} studies of {size} seeds within the budget of {budget}")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--results", type=Path, default=Path("results"), help="study results folder")
    p.add_argument(
        "--data", type=Path, default=Path("data/prepared"), help="prepared dataset (known effects)"
    )
    p.add_argument("--tasks", nargs="+", default=list(STATISTICS), choices=list(STATISTICS))
    p.add_argument(
        "--images", type=int, nargs="+", default=None, help="score the first N test images only"
    )
    p.add_argument("--blocks", action="store_true", help="RMS over disjoint blocks of N images")
    p.add_argument(
        "--seed-blocks",
        type=int,
        metavar="K",
        default=None,
        help="also the largest seed std of each disjoint block of K seeds (K >= 2)",
    )
    p.add_argument("--bootstrap", type=int, default=1000, help="resamples of the known effects")
    args = p.parse_args(argv)
    if args.seed_blocks is not None and args.seed_blocks < 2:
        p.error("--seed-blocks: a seed std needs blocks of at least 2 seeds")
    logging.basicConfig(level=logging.WARNING)

    cfg = ReportConfig(bootstrap_samples=args.bootstrap)
    visibility = None
    if (args.data / "manifest.json").is_file():
        visibility = Manifest.load(args.data).modality_visibility or None
    runs = load_results(args.results)
    for task in args.tasks:
        task_runs = runs.task_runs(task)
        if not task_runs:
            print(f"\n{task}: no runs under {args.results / task}")
            continue
        stems = task_stems(args.results, task)
        by_size = {}
        for n in args.images or [len(stems)]:
            by_size[n] = stats = STATISTICS[task](task_runs, cfg, [], only=stems[:n])
            if stats is not None:
                print_study(stats, cfg, visibility)
        if args.blocks and args.images:
            print_blocks(args.results, task, stems, args.images, cfg)
        if args.seed_blocks:
            whole = by_size.get(len(stems)) or STATISTICS[task](task_runs, cfg, [], only=stems)
            if whole is not None:
                print_seed_blocks(whole, args.seed_blocks, list(cfg.baselines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
