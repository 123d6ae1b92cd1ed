import json

import numpy as np
import pytest

from mmif.io import read_image
from mmif.layout import Manifest, list_pairs
from preparation.writer import Sample, write_prepared


def _sample(
    split="train", stem="s0", h=12, w=16, colour=True, labels=None, mask=None, salient=None, seed=0
):
    rng = np.random.default_rng(seed)
    ir = rng.integers(0, 256, (h, w), dtype=np.uint8)
    vis = rng.integers(0, 256, (h, w, 3) if colour else (h, w), dtype=np.uint8)
    return Sample(split, stem, ir, vis, labels=labels, mask=mask, salient=salient)


def _manifest(**kw):
    return Manifest(name="t", provenance="test", splits={}, **kw)


def _leftovers(out):
    return [
        p for p in out.parent.iterdir() if p.name == out.name or p.name.startswith(f".{out.name}.")
    ]


def test_round_trip_layout_and_manifest(tmp_path):
    mask = np.zeros((12, 16), np.uint8)
    mask[2:5, 3:9] = 2
    mask[0, 0] = 255
    sal = np.zeros((12, 16), bool)
    sal[2:5, 3:9] = True
    samples = [
        _sample(
            "train",
            "a",
            labels=[(0, 0.5, 0.5, 0.25, 0.5), (1, 0.1, 0.2, 0.1, 0.2)],
            mask=mask,
            salient=sal,
        ),
        _sample("train", "b", colour=False, labels=[], mask=mask, seed=1),
        _sample("test", "c", h=10, w=20, labels=[(1, 0.5, 0.5, 1.0, 1.0)], seed=2),
    ]
    out = tmp_path / "prepared"
    m = write_prepared(
        out,
        iter(samples),
        _manifest(
            det_classes=["person", "car"],
            seg_classes=["bg", "car", "person"],
            salient_source="test",
        ),
        progress=False,
    )

    assert m.splits == {"train": 2, "test": 1}
    assert m.image_sizes == {"16x12": 2, "20x10": 1}
    assert m.colour_visible and m.has_det_labels and m.has_seg_masks
    assert m.salient_source == "test"
    assert m.extra["boxes_per_class"] == {"person": 1, "car": 2}
    assert Manifest.load(out) == m
    assert json.loads((out / "manifest.json").read_text())["splits"] == {"train": 2, "test": 1}

    pairs = {p.stem: p for p in list_pairs(out, "train")}
    assert set(pairs) == {"a", "b"}
    assert np.array_equal(read_image(pairs["a"].ir), samples[0].ir)
    assert np.array_equal(read_image(pairs["a"].vis), samples[0].vis)
    assert read_image(pairs["b"].vis).ndim == 2
    assert np.array_equal(read_image(pairs["a"].mask), mask)
    assert set(np.unique(read_image(pairs["a"].salient)).tolist()) == {0, 255}
    assert pairs["b"].salient is None
    rows = [[float(v) for v in line.split()] for line in pairs["a"].labels.read_text().splitlines()]
    assert np.allclose(rows, [[0, 0.5, 0.5, 0.25, 0.5], [1, 0.1, 0.2, 0.1, 0.2]])
    assert pairs["b"].labels.read_text() == ""  # an image with no object keeps an empty file
    assert list_pairs(out, "test")[0].mask is None


def test_samples_without_labels_write_no_label_files(tmp_path):
    out = tmp_path / "p"
    m = write_prepared(out, [_sample("test", "x")], _manifest(salient_source="s"), progress=False)
    assert not (out / "test" / "labels").exists()
    assert not m.has_det_labels and not m.has_seg_masks
    assert m.salient_source is None  # nothing salient was written


def test_failure_mid_stream_leaves_nothing(tmp_path):
    out = tmp_path / "p"

    def gen():
        yield _sample("train", "a")
        raise RuntimeError("reader broke")

    with pytest.raises(RuntimeError, match="reader broke"):
        write_prepared(out, gen(), _manifest(), progress=False)
    assert _leftovers(out) == []


def test_failure_keeps_previous_output(tmp_path):
    out = tmp_path / "p"
    write_prepared(out, [_sample("test", "old")], _manifest(), progress=False)
    with pytest.raises(ValueError, match="new"):
        write_prepared(
            out,
            [_sample("test", "new", labels=[(5, 0.5, 0.5, 0.1, 0.1)])],
            _manifest(det_classes=["a"]),
            progress=False,
        )
    assert [p.stem for p in list_pairs(out, "test")] == ["old"]
    assert _leftovers(out) == [out]


@pytest.mark.parametrize(
    "sample, match",
    [
        (
            Sample("train", "s", np.zeros((4, 4), np.uint8), np.zeros((4, 5), np.uint8)),
            "register or resize",
        ),
        (
            Sample("training", "s", np.zeros((4, 4), np.uint8), np.zeros((4, 4), np.uint8)),
            "split must be one of",
        ),
        (
            Sample("train", "a/b", np.zeros((4, 4), np.uint8), np.zeros((4, 4), np.uint8)),
            "must not .*contain '/'",
        ),
        (Sample("train", "s", np.zeros((4, 4), np.float32), np.zeros((4, 4), np.uint8)), "uint8"),
        (
            Sample("train", "s", np.zeros((4, 4), np.uint8), np.zeros((4, 4, 4), np.uint8)),
            "vis must be",
        ),
        (
            Sample(
                "train",
                "s",
                np.zeros((4, 4), np.uint8),
                np.zeros((4, 4), np.uint8),
                labels=[(3, 0.5, 0.5, 0.1, 0.1)],
            ),
            "class 3 outside",
        ),
        (
            Sample(
                "train",
                "s",
                np.zeros((4, 4), np.uint8),
                np.zeros((4, 4), np.uint8),
                labels=[(0, 0.5, 0.5, 1.5, 0.1)],
            ),
            "not normalised",
        ),
        (
            Sample(
                "train",
                "s",
                np.zeros((4, 4), np.uint8),
                np.zeros((4, 4), np.uint8),
                mask=np.full((4, 4), 7, np.uint8),
            ),
            r"mask ids \[7\]",
        ),
        (
            Sample(
                "train",
                "s",
                np.zeros((4, 4), np.uint8),
                np.zeros((4, 4), np.uint8),
                salient=np.zeros((3, 4), np.uint8),
            ),
            "salient must be",
        ),
    ],
)
def test_bad_sample_is_rejected_and_nothing_written(tmp_path, sample, match):
    out = tmp_path / "p"
    with pytest.raises(ValueError, match=match):
        write_prepared(
            out,
            [_sample("train", "ok"), sample],
            _manifest(det_classes=["a", "b"], seg_classes=["bg", "x"]),
            progress=False,
        )
    assert _leftovers(out) == []


def test_duplicate_stem_in_split_rejected(tmp_path):
    out = tmp_path / "p"
    with pytest.raises(ValueError, match="written twice"):
        write_prepared(
            out, [_sample("train", "a"), _sample("train", "a", seed=3)], _manifest(), progress=False
        )
    assert _leftovers(out) == []


def test_empty_dataset_is_an_error(tmp_path):
    out = tmp_path / "p"
    with pytest.raises(ValueError, match="empty"):
        write_prepared(out, [], _manifest(), progress=False)
    assert _leftovers(out) == []
