"""FMI_pixel's numba CPU kernel (`metrics.fmi_cpu`) against the torch path of
`metrics.fmi`, and the dispatch between them."""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from metrics import fmi
from metrics.fmi import fmi_maps, fmi_maps_torch

fmi_cpu = pytest.importorskip("metrics.fmi_cpu", reason="numba is not installed")

TNO = Path(__file__).resolve().parents[1] / "fixtures" / "tno"  # vendored (see its SOURCE.md)
# the kernel computes in float64 and returns float32 maps (values <= 1: rounding < 6e-8)
ATOL = 1e-6


def _tensor(x: np.ndarray) -> torch.Tensor:
    """B x H x W grey levels -> B x 1 x H x W float64 tensor."""
    return torch.from_numpy(np.asarray(x, dtype=np.float64))[:, None]


def _images(kind: str, shape: tuple[int, int, int], seed: int) -> tuple[torch.Tensor, ...]:
    """(a, b, f) integer grey levels with the window types the staircase has to handle."""
    rng = np.random.default_rng(seed)
    if kind == "uniform":
        a, b, f = (rng.integers(0, 256, shape) for _ in range(3))
    elif kind == "few_levels":  # ties, repeated breakpoints, flat and zero-covariance windows
        a, b, f = (rng.integers(0, 3, shape) * 100 for _ in range(3))
    elif kind == "binary":
        a, b, f = (rng.integers(0, 2, shape) * 255 for _ in range(3))
    elif kind == "sparse":  # single nonzero bins (entropy 0) next to flat windows
        a, b, f = ((rng.random(shape) < 0.04) * rng.integers(1, 256, shape) for _ in range(3))
    elif kind == "mixed":  # as in test_metrics: anticorrelated, flat patches, quantised ties
        a = rng.integers(0, 256, shape)
        b = 255 - a
        f = np.clip(a + rng.integers(-30, 30, shape), 0, 255)
        a[:, :6, :6] = 7
        f[:, 8:14, 5:12] = 200
        b[:, ::2] = b[:, ::2] // 32 * 32
    else:
        raise ValueError(kind)
    return tuple(_tensor(x) for x in (a, b, f))


# widths: exactly one block of windows, a shifted last block, narrower than a block (padded)
SHAPES = [(2, 23, 150), (1, 3, fmi_cpu.BLOCK + 2), (1, 4, fmi_cpu.BLOCK + 3), (1, 9, 20)]
KINDS = ["uniform", "few_levels", "binary", "sparse", "mixed"]


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "x".join(map(str, s)))
def test_numba_kernel_matches_torch_path(kind, shape):
    a, b, f = _images(kind, shape, seed=len(kind) + shape[2])
    got = fmi_maps(a, b, f, backend="numba")
    assert got.dtype == torch.float32
    assert got.shape == (shape[0], shape[1] - 2, shape[2] - 2)
    want = fmi_maps_torch(a, b, f, dtype=torch.float64)
    torch.testing.assert_close(got.double(), want, atol=ATOL, rtol=0)


def test_negatively_correlated_windows_use_the_lower_bound():
    a, _, f = _images("uniform", (1, 30, 90), seed=5)
    b = 255.0 - a  # every textured window of b is anticorrelated with a
    got = fmi_maps(a, b, f, backend="numba")
    torch.testing.assert_close(
        got.double(), fmi_maps_torch(a, b, f, dtype=torch.float64), atol=ATOL, rtol=0
    )
    # FMI(a, a) = 1 (comonotone); FMI(255 - a, a) is not 1 but symmetric in the reversal
    both = fmi_maps(a, b, a, backend="numba")
    reversed_fused = fmi_maps(b, a, b, backend="numba")
    torch.testing.assert_close(both, reversed_fused, atol=ATOL, rtol=0)


def test_identical_images_give_one_on_textured_windows():
    a, _, _ = _images("few_levels", (1, 40, 70), seed=2)
    got = fmi_maps(a, a, a, backend="numba")[0].numpy()
    win = np.lib.stride_tricks.sliding_window_view(a[0, 0].numpy(), (3, 3))
    textured = win.max((-2, -1)) > win.min((-2, -1))
    np.testing.assert_allclose(got[textured], 1.0, atol=ATOL)
    np.testing.assert_allclose(got[~textured], 0.0, atol=ATOL)


@pytest.fixture(scope="module")
def real_pair() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    from mmif.io import read_image

    a = read_image(TNO / "ir" / "TNO_025.png", mode="grey").astype(np.float64)
    b = read_image(TNO / "vis" / "TNO_025.png", mode="grey").astype(np.float64)
    f = np.clip(np.rint(0.45 * a + 0.55 * b + 3.0), 0, 255)
    return _tensor(a[None]), _tensor(b[None]), _tensor(f[None])


def test_numba_kernel_matches_torch_path_on_real_pair(real_pair):
    got = fmi_maps(*real_pair, backend="numba")
    torch.testing.assert_close(
        got.double(), fmi_maps_torch(*real_pair, dtype=torch.float64), atol=ATOL, rtol=0
    )
    # the float32 torch path (the reference port's precision) agrees on the mean; single sparse
    # windows differ by up to about 1e-4 there
    want32 = fmi_maps_torch(*real_pair)
    assert float(got.double().mean()) == pytest.approx(float(want32.double().mean()), rel=2e-6)
    torch.testing.assert_close(got, want32, atol=3e-4, rtol=0)


def test_grey_level_dtypes_give_the_same_maps():
    a, b, f = _images("mixed", (1, 12, 80), seed=3)
    ref = fmi_maps(a, b, f, backend="numba")
    for dtype in (torch.float32, torch.uint8, torch.int64):
        got = fmi_maps(a.to(dtype), b.to(dtype), f.to(dtype), backend="numba")
        assert torch.equal(got, ref), dtype


def test_log2_polynomial_is_accurate():
    rng = np.random.default_rng(0)
    x = np.concatenate(
        [
            np.logspace(-300, 300, 2001),
            rng.uniform(0.5, 2.0, 20000),
            np.arange(1.0, 70000.0),
            -rng.uniform(1e-3, 1e7, 2000),
        ]
    )
    err = np.abs(fmi_cpu.log2_abs(x) - np.log2(np.abs(x)))
    assert err.max() < 1e-9


def test_cpu_tensors_use_the_numba_kernel_by_default():
    a, b, f = _images("uniform", (1, 10, 70), seed=4)
    assert torch.equal(fmi_maps(a, b, f), fmi_maps(a, b, f, backend="numba"))
    assert torch.equal(fmi_maps(a, b, f, backend="torch"), fmi_maps_torch(a, b, f))


def test_falls_back_to_torch_with_a_warning_without_numba(monkeypatch, caplog):
    a, b, f = _images("uniform", (1, 10, 70), seed=4)
    monkeypatch.setitem(sys.modules, "metrics.fmi_cpu", None)  # import now fails
    fmi._numba_maps.cache_clear()
    try:
        with caplog.at_level(logging.WARNING, logger="metrics.fmi"):
            got = fmi_maps(a, b, f)
        assert torch.equal(got, fmi_maps_torch(a, b, f))
        assert "numba" in caplog.text
        with pytest.raises(RuntimeError, match="numba"):
            fmi_maps(a, b, f, backend="numba")
    finally:
        fmi._numba_maps.cache_clear()


def test_backend_arguments_are_checked():
    a, b, f = _images("uniform", (1, 10, 70), seed=4)
    with pytest.raises(ValueError, match="unknown FMI backend"):
        fmi_maps(a, b, f, backend="cuda")
    meta = a.to("meta")
    with pytest.raises(ValueError, match="CPU tensors only"):
        fmi_maps(meta, meta, meta, backend="numba")


def test_kernel_compiles_without_a_cache_location(monkeypatch):
    """A read-only install where numba finds nowhere to write its cache still works."""
    caching = pytest.importorskip("numba.core.caching")
    impl = getattr(caching, "CacheImpl", None) or getattr(caching, "_CacheImpl", None)
    if impl is None or not hasattr(impl, "_locator_classes"):
        pytest.skip("numba's cache locators moved")
    monkeypatch.setattr(impl, "_locator_classes", [])  # numba then raises at decoration

    def twice(x):
        return 2 * x

    assert fmi_cpu._jit()(twice)(21) == 42
