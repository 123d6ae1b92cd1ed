"""Seeded train/val/test splits, stratified by day and night when the file names say which.

MSRS-style stems end in `D` (day) or `N` (night) after the frame number (`00012N`); such stems
are split per group so that every split keeps the day/night ratio. Stems are sorted before
shuffling, so the split depends only on the set of stems, the fractions and the seed.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from mmif.layout import condition_of


def strata(stems: Iterable[str]) -> dict[str, list[str]]:
    """Group stems by condition ("day", "night": `mmif.layout.condition_of`) when every stem
    carries one, else one group "all"."""
    stems = sorted(set(stems))
    tags = [condition_of(s) for s in stems]
    if stems and all(tags):
        groups: dict[str, list[str]] = {}
        for s, t in zip(stems, tags, strict=True):
            groups.setdefault(t, []).append(s)
        return groups
    return {"all": stems}


def assign_splits(
    stems: Iterable[str], val_fraction: float, test_fraction: float, seed: int
) -> dict[str, str]:
    """Map stem -> "train" | "val" | "test", seeded and stratified by day/night.

    In each group round(n * test_fraction) stems go to test and round(n * val_fraction) to val
    (never more than the group holds); the rest go to train.
    """
    if not (
        0 <= val_fraction <= 1 and 0 <= test_fraction <= 1 and val_fraction + test_fraction <= 1
    ):
        raise ValueError(
            f"split fractions val={val_fraction}, test={test_fraction}: each in [0, 1], sum at most 1"
        )
    out: dict[str, str] = {}
    for k, (_, group) in enumerate(sorted(strata(stems).items())):
        rng = np.random.default_rng([seed, k])
        order = [group[i] for i in rng.permutation(len(group))]
        n_test = min(len(order), int(round(len(order) * test_fraction)))
        n_val = min(len(order) - n_test, int(round(len(order) * val_fraction)))
        for i, stem in enumerate(order):
            out[stem] = "test" if i < n_test else "val" if i < n_test + n_val else "train"
    return out


def evenly_spaced(stems: list[str], n: int) -> list[str]:
    """`n` stems spread evenly over the sorted list (all of them when n >= len), per day/night group."""
    groups = strata(stems)
    total = sum(len(g) for g in groups.values())
    if n >= total:
        return sorted(stems)
    picked: list[str] = []
    for _, group in sorted(groups.items()):
        k = max(1, int(round(n * len(group) / total))) if n > 0 else 0
        k = min(k, len(group))
        idx = np.unique(np.linspace(0, len(group) - 1, k).round().astype(int)) if k else []
        picked.extend(group[i] for i in idx)
    return sorted(picked)
