from collections import Counter

import pytest

from mmif.layout import condition_of
from preparation.splits import assign_splits, evenly_spaced, strata


def test_day_night_rule():
    # the one rule of the splits, the manifest counts and the report (mmif.layout.condition_of)
    assert condition_of("00012N") == "night"
    assert condition_of("01566D") == "day"
    assert condition_of("test_00003D") == "day"
    # the report's old copy took any trailing D / N; a frame number must come before the tag
    assert condition_of("DN") is None
    assert condition_of("ROAD") is None
    assert condition_of("TNO_CAMPN") is None
    assert condition_of("00012n") is None
    assert condition_of("TNO_001") is None
    assert condition_of("") is None


def test_split_is_seeded_complete_and_sized():
    stems = [f"img{i:03d}" for i in range(100)]
    a = assign_splits(stems, 0.1, 0.2, seed=0)
    assert set(a) == set(stems)
    assert Counter(a.values()) == {"train": 70, "val": 10, "test": 20}
    assert (
        assign_splits(list(reversed(stems)), 0.1, 0.2, seed=0) == a
    )  # order of discovery does not matter
    assert assign_splits(stems, 0.1, 0.2, seed=1) != a


def test_split_is_stratified_by_day_and_night():
    stems = [f"{i:05d}D" for i in range(40)] + [f"{i:05d}N" for i in range(40, 60)]
    a = assign_splits(stems, 0.0, 0.25, seed=3)
    test = [s for s, v in a.items() if v == "test"]
    assert Counter(s[-1] for s in test) == {"D": 10, "N": 5}


def test_strata_need_every_stem_tagged():
    assert set(strata(["00001D", "00002N"])) == {"day", "night"}
    assert list(strata(["00001D", "other"])) == ["all"]


def test_all_to_test_and_bad_fractions():
    assert set(assign_splits(["a", "b", "c"], 0.0, 1.0, seed=0).values()) == {"test"}
    with pytest.raises(ValueError, match="sum at most 1"):
        assign_splits(["a"], 0.6, 0.6, seed=0)


def test_evenly_spaced_keeps_day_night_balance():
    stems = [f"{i:05d}D" for i in range(30)] + [f"{i:05d}N" for i in range(30, 60)]
    picked = evenly_spaced(stems, 10)
    assert len(picked) == 10
    assert Counter(s[-1] for s in picked) == {"D": 5, "N": 5}
    assert "00000D" in picked and "00029D" in picked  # spread over the range
    assert evenly_spaced(stems, 100) == sorted(stems)
