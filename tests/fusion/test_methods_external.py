"""External fused images: lookup by stem, validation messages, and the fuse stage's use of them."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from fusion.methods.external import validate_external
from fusion.registry import create_method
from mmif.errors import ConfigError
from mmif.io import ImageError, read_image, to_tensor, write_image


def _grey(h: int, w: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (h, w), dtype=np.uint8)


def _rgb(h: int, w: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


@pytest.fixture()
def fused_folder(tmp_path: Path) -> Path:
    folder = tmp_path / "tardal"
    write_image(folder / "a.png", _grey(6, 8, 1))
    write_image(folder / "b.bmp", _rgb(6, 8, 2))  # any image extension
    write_image(folder / "c.png", _grey(5, 8, 3))  # wrong size for a 6 x 8 pair
    return folder


def test_validate_accepts_a_good_folder(fused_folder):
    paths = validate_external(fused_folder, ["a", "b"], {"a": (6, 8), "b": (6, 8)})
    assert paths == {"a": fused_folder / "a.png", "b": fused_folder / "b.bmp"}


def test_validate_names_folder_and_first_missing_stem(fused_folder):
    with pytest.raises(
        ImageError, match=r"tardal: no fused image for stem 'x' \(2 of 3 missing\)"
    ) as exc:
        validate_external(fused_folder, ["a", "x", "y"], {})
    assert "add x.png" in str(exc.value)


def test_validate_names_mis_sized_file_and_sizes(fused_folder):
    with pytest.raises(
        ImageError, match=r"c\.png is 8x5 but the source pair 'c' is 8x6; re-export"
    ):
        validate_external(fused_folder, ["a", "c"], {"a": (6, 8), "c": (6, 8)})


def test_validate_rejects_missing_folder(tmp_path):
    with pytest.raises(ImageError, match="folder not found"):
        validate_external(tmp_path / "nope", ["a"], {})


def test_fuse_batch_returns_the_stored_images(fused_folder):
    method = create_method("external:tardal", {"dir": str(fused_folder)})
    assert method.name == "external:tardal"
    ir = torch.zeros(2, 1, 6, 8)
    out = method.fuse_batch(ir, ir, ["a", "b"])
    assert out.shape == (2, 3, 6, 8)  # a colour image in the batch makes it RGB
    torch.testing.assert_close(
        out[0], to_tensor(read_image(fused_folder / "a.png"))[0].expand(3, -1, -1)
    )
    torch.testing.assert_close(out[1], to_tensor(read_image(fused_folder / "b.bmp"))[0])
    grey = method.fuse_batch(ir[:1], ir[:1], ["a"])
    assert grey.shape == (1, 1, 6, 8)
    assert method.info()["external"] is True and method.info()["dir"] == str(fused_folder)


def test_fuse_batch_rejects_wrong_size_and_missing_stem(fused_folder):
    method = create_method("external_tardal", {"dir": str(fused_folder)})
    ir = torch.zeros(1, 1, 6, 8)
    with pytest.raises(ImageError, match="c.png is 8x5"):
        method.fuse_batch(ir, ir, ["c"])
    with pytest.raises(ImageError, match="no fused image for stem 'zz'"):
        method.fuse_batch(ir, ir, ["zz"])


def test_split_subfolders_and_ambiguous_stems(tmp_path):
    folder = tmp_path / "ext"
    write_image(folder / "test" / "s1.png", _grey(4, 4, 1))
    write_image(folder / "train" / "s1.png", _grey(4, 4, 2))
    write_image(folder / "train" / "s2.png", _grey(4, 4, 3))
    method = create_method("external:ext", {"dir": str(folder)})
    ir = torch.zeros(1, 1, 4, 4)
    torch.testing.assert_close(method.fuse_batch(ir, ir, ["s2"])[0], to_tensor(_grey(4, 4, 3))[0])
    with pytest.raises(ImageError, match="'s1' is in several folders"):
        method.fuse_batch(ir, ir, ["s1"])
    method.use_split("test")
    torch.testing.assert_close(method.fuse_batch(ir, ir, ["s1"])[0], to_tensor(_grey(4, 4, 1))[0])


def test_fuse_luminance_refuses_and_dir_is_required(fused_folder):
    method = create_method("external:tardal", {"dir": str(fused_folder)})
    with pytest.raises(RuntimeError, match="no fusion algorithm"):
        method.fuse(torch.zeros(1, 1, 6, 8), torch.zeros(1, 1, 6, 8))
    with pytest.raises(ConfigError, match="dir is not set"):
        create_method("external:tardal", {})


def _fuse_stage(argv: list[str]) -> int:
    import argparse

    from pipelines import fuse

    parser = argparse.ArgumentParser()
    fuse.add_arguments(parser)
    return fuse.run(parser.parse_args(argv))


def test_fuse_stage_reads_a_good_folder_and_writes_nothing_for_a_bad_one(tmp_path, fused_folder):
    ir_dir, vis_dir = tmp_path / "ir", tmp_path / "vis"
    for stem, seed in (("a", 4), ("b", 5)):
        write_image(ir_dir / f"{stem}.png", _grey(6, 8, seed))
        write_image(vis_dir / f"{stem}.png", _rgb(6, 8, seed))
    common = [
        "--method",
        "external:tardal",
        "--ir",
        str(ir_dir),
        "--vis",
        str(vis_dir),
        "--device",
        "cpu",
    ]
    common += ["--params", str(tmp_path / "absent.yaml"), "--set", f"dir={fused_folder}"]
    out = tmp_path / "out"
    assert _fuse_stage([*common, "--out", str(out)]) == 0
    np.testing.assert_array_equal(read_image(out / "a.png"), read_image(fused_folder / "a.png"))
    np.testing.assert_array_equal(read_image(out / "b.png"), read_image(fused_folder / "b.bmp"))

    write_image(ir_dir / "c.png", _grey(6, 8, 6))
    write_image(vis_dir / "c.png", _grey(6, 8, 6))
    bad_out = tmp_path / "bad_out"
    with pytest.raises(ImageError, match="c.png is 8x5 but the source pair 'c' is 8x6"):
        _fuse_stage([*common, "--out", str(bad_out)])
    assert not bad_out.exists()
