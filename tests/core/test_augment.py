"""Photometric augmentation of the shared task models (mmif.augment)."""

from __future__ import annotations

import numpy as np
import pytest

from mmif.augment import Appearance, jitter


def image(channels: int = 3) -> np.ndarray:
    rng = np.random.default_rng(0)
    grey = rng.uniform(0.1, 0.9, (24, 32, 1)).astype(np.float32)
    return np.repeat(grey, channels, axis=2)


def test_off_is_the_identity_and_the_input_is_kept():
    x = image()
    before = x.copy()
    out = jitter(x, Appearance(), np.random.default_rng(1))
    assert np.array_equal(out, x) and np.array_equal(x, before)


@pytest.mark.parametrize(
    "cfg",
    [Appearance(contrast=0.4), Appearance(gamma=0.4), Appearance(blur=1.0), Appearance(noise=0.05)],
)
def test_each_change_changes_the_image_within_range(cfg):
    x = image()
    out = jitter(x, cfg, np.random.default_rng(3))
    assert out.shape == x.shape and out.dtype == np.float32
    assert out.min() >= 0.0 and out.max() <= 1.0
    assert not np.allclose(out, x)


def test_grey_stays_grey_and_one_channel_keeps_its_shape():
    cfg = Appearance(contrast=0.3, gamma=0.3, blur=1.0, noise=0.05)
    out = jitter(image(3), cfg, np.random.default_rng(0))
    assert np.array_equal(out[..., 0], out[..., 1]) and np.array_equal(out[..., 0], out[..., 2])
    assert jitter(image(1), cfg, np.random.default_rng(0)).shape == (24, 32, 1)


def test_same_generator_state_gives_the_same_image():
    cfg = Appearance(contrast=0.3, gamma=0.3, blur=0.5, noise=0.05)
    a = jitter(image(), cfg, np.random.default_rng(7))
    b = jitter(image(), cfg, np.random.default_rng(7))
    assert np.array_equal(a, b)


def test_mapping_errors_name_the_key():
    with pytest.raises(ValueError, match=r"appearance\.tint"):
        Appearance.from_mapping({"tint": 0.1})
    with pytest.raises(ValueError, match="mapping"):
        Appearance.from_mapping([0.1])
    assert not Appearance.from_mapping(None).active
