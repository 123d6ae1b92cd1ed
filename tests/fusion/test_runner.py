"""fusion.runner.fuse_pairs: same-size pairs are fused in batches of at most batch_size, and the
images written are those of fusing every pair on its own."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from fusion.registry import FusionMethod, create_method
from fusion.runner import fuse_pairs
from mmif.io import ImageError, read_image, to_tensor, to_uint8, write_image
from mmif.layout import SourcePair

pytestmark = pytest.mark.usefixtures("single_thread")  # small tensors (tests/conftest.py)


class Recording(FusionMethod):
    """A real method ("weighted", 0.3 ir + 0.7 vis) that records the stems of every batch."""

    def __init__(self) -> None:
        self.inner = create_method("weighted", {"weight_ir": 0.3})
        super().__init__(device="cpu")
        self.name = "recording"
        self.batches: list[tuple[list[str], tuple[int, ...], tuple[int, ...]]] = []

    def fuse_luminance(self, ir: torch.Tensor, vis: torch.Tensor) -> torch.Tensor:
        return self.inner.fuse_luminance(ir, vis)

    def fuse_batch(self, ir: torch.Tensor, vis: torch.Tensor, stems: list[str]) -> torch.Tensor:
        assert ir.shape[0] == vis.shape[0] == len(stems)
        self.batches.append((list(stems), tuple(ir.shape), tuple(vis.shape)))
        return super().fuse_batch(ir, vis, stems)


#: stem -> (height, width, colour visible); interleaved so that batches fill out of order
SHAPES = {
    "a0": (20, 24, False), "b0": (16, 30, False), "a1": (20, 24, False), "c0": (20, 24, True),
    "a2": (20, 24, False), "b1": (16, 30, False), "c1": (20, 24, True), "a3": (20, 24, False),
    "a4": (20, 24, False), "b2": (16, 30, False),
}  # fmt: skip


def _pairs(root: Path, shapes: dict[str, tuple[int, int, bool]]) -> list[SourcePair]:
    rng = np.random.default_rng(0)
    pairs = []
    for stem, (h, w, colour) in shapes.items():
        ir = rng.integers(0, 256, (h, w), dtype=np.uint8)
        vis = rng.integers(0, 256, (h, w, 3) if colour else (h, w), dtype=np.uint8)
        write_image(root / "ir" / f"{stem}.png", ir)
        write_image(root / "vis" / f"{stem}.png", vis)
        pairs.append(SourcePair(stem, root / "ir" / f"{stem}.png", root / "vis" / f"{stem}.png"))
    return pairs


def _alone(method: FusionMethod, pair: SourcePair) -> np.ndarray:
    ir, vis = to_tensor(read_image(pair.ir)), to_tensor(read_image(pair.vis))
    return to_uint8(method.fuse(ir, vis)[0])


@pytest.mark.parametrize("batch_size", [1, 2, 3, 5, 64])
def test_batches_are_same_size_and_bounded_and_outputs_equal_one_by_one(tmp_path, batch_size):
    pairs = _pairs(tmp_path / "src", SHAPES)
    method = Recording()
    n = fuse_pairs(method, pairs, tmp_path / "out", batch_size=batch_size, progress=False)
    assert n == len(pairs)
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == sorted(
        f"{s}.png" for s in SHAPES
    )
    seen: list[str] = []
    for stems, ir_shape, vis_shape in method.batches:
        assert 1 <= len(stems) <= batch_size
        kinds = {SHAPES[s] for s in stems}
        assert len(kinds) == 1, f"one batch mixes sizes or colour: {stems}"
        h, w, colour = kinds.pop()
        assert ir_shape == (len(stems), 1, h, w) and vis_shape == (
            len(stems),
            3 if colour else 1,
            h,
            w,
        )
        seen += stems
    assert sorted(seen) == sorted(SHAPES)  # every pair fused exactly once
    # full batches while a size has enough pairs left: 5 a, 3 b and 2 c pairs
    for key, count in (((20, 24, False), 5), ((16, 30, False), 3), ((20, 24, True), 2)):
        sizes = [len(b[0]) for b in method.batches if SHAPES[b[0][0]] == key]
        assert sizes == [batch_size] * (count // batch_size) + (
            [count % batch_size] if count % batch_size else []
        ), (key, sizes)
    for pair in pairs:
        got = read_image(tmp_path / "out" / f"{pair.stem}.png")
        assert np.array_equal(got, _alone(method.inner, pair)), pair.stem
        assert got.ndim == (3 if SHAPES[pair.stem][2] else 2)


def test_batched_and_one_by_one_runs_write_the_same_files(tmp_path):
    """A multi-scale method (Laplacian pyramid: convolutions, down- and up-sampling of the whole
    batch) gives the same 8-bit images in batches of 4 as one at a time."""
    pairs = _pairs(tmp_path / "src", SHAPES)
    method = create_method("laplacian")
    fuse_pairs(method, pairs, tmp_path / "one", batch_size=1, progress=False)
    fuse_pairs(method, pairs, tmp_path / "four", batch_size=4, progress=False)
    for stem in SHAPES:
        one = read_image(tmp_path / "one" / f"{stem}.png")
        four = read_image(tmp_path / "four" / f"{stem}.png")
        assert np.array_equal(one, four), stem


def test_empty_list_writes_nothing(tmp_path):
    assert fuse_pairs(Recording(), [], tmp_path / "out", progress=False) == 0
    assert not (tmp_path / "out").exists()


def test_sources_of_different_sizes_name_both_files(tmp_path):
    pairs = _pairs(tmp_path / "src", {"a0": (20, 24, False)})
    write_image(pairs[0].vis, np.zeros((20, 23), np.uint8))
    with pytest.raises(ImageError, match=r"a0.png is 24x20 but .*a0.png is 23x20"):
        fuse_pairs(Recording(), pairs, tmp_path / "out", progress=False)
