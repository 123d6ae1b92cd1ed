"""Fusion quality metrics: reference fixture, independent re-implementations, properties, I/O."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import torch.nn.functional as F
from scipy.signal import convolve2d

from metrics import (
    METRIC_NAMES,
    FusionMetricCollection,
    compute_metrics,
    en,
    evaluate_folders,
    fmi_pixel,
    grey_levels,
    mi,
    psnr,
    qabf,
    ssim,
    table_means,
    vif,
)
from metrics.config import MetricsConfig
from mmif.config import from_dict
from mmif.errors import ConfigError
from mmif.io import ImageError, write_image

# vendored (tests/fixtures/SOURCE.md): the reference table and the TNO pairs it was computed on
FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
FIXTURE = FIXTURES / "fusion_metrics_reference.csv"
TNO = FIXTURES / "tno"

# tolerances stated in docs/METRICS.md (relative unless noted)
CDDFUSE_RTOL = 5e-7
CDDFUSE_SSIM_RTOL = 3e-6
PORT_RTOL = 1e-4
NABF_ATOL = 1e-6


def _read_grey(path: Path) -> np.ndarray:
    from mmif.io import read_image

    return read_image(path, mode="grey")


def _unit(arr: np.ndarray) -> torch.Tensor:
    """uint8 H x W -> 1 x 1 x H x W float in [0, 1]."""
    return torch.from_numpy(arr.astype(np.float64) / 255.0)[None, None]


def _fixture_fusions(a: np.ndarray, b: np.ndarray) -> dict[str, np.ndarray]:
    """The three fusions of METRICS.md, from uint8 sources a = ir, b = vis."""
    a16, b16 = a.astype(np.int32), b.astype(np.int32)
    return {
        "mean": ((a16 + b16 + 1) // 2).astype(np.uint8),
        "max": np.maximum(a16, b16).astype(np.uint8),
        "w73": np.clip(np.rint(0.7 * b16 + 0.3 * a16), 0, 255).astype(np.uint8),
    }


def _smooth_images(n: int, h: int, w: int, seed: int) -> torch.Tensor:
    """n x 1 x h x w images on the 8-bit grid: smooth structure plus some texture."""
    gen = torch.Generator().manual_seed(seed)
    coarse = torch.rand(n, 1, h // 6 + 2, w // 6 + 2, generator=gen, dtype=torch.float64)
    x = F.interpolate(coarse, size=(h, w), mode="bicubic", align_corners=False)
    x = x + 0.12 * torch.rand(n, 1, h, w, generator=gen, dtype=torch.float64)
    return (x.clamp(0.0, 1.0) * 255.0).round() / 255.0


def _triple(
    n: int = 2, h: int = 40, w: int = 52, seed: int = 0
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    ir = _smooth_images(n, h, w, seed)
    vis = _smooth_images(n, h, w, seed + 100)
    fused = ((0.6 * ir + 0.4 * vis) * 255.0).round() / 255.0
    return ir, vis, fused


def _levels(x: torch.Tensor) -> np.ndarray:
    """1 x 1 x H x W in [0, 1] -> H x W float64 grey levels."""
    return np.rint(x[0, 0].double().numpy() * 255.0)


# ----------------------------------------------------------------------------------------------
# reference fixture (METRICS.md)


@pytest.fixture(scope="module")
def fixture_results() -> dict[tuple[str, str], dict[str, dict[str, float]]]:
    """(pair, fusion) -> convention -> metric -> value, for the fixture's pairs."""
    out: dict[tuple[str, str], dict[str, dict[str, float]]] = {}
    for pair in ("TNO_001", "TNO_005"):
        a = _read_grey(TNO / "ir" / f"{pair}.png")
        b = _read_grey(TNO / "vis" / f"{pair}.png")
        fusions = _fixture_fusions(a, b)
        kinds = list(fusions)
        ir = _unit(a).repeat(len(kinds), 1, 1, 1)
        vis = _unit(b).repeat(len(kinds), 1, 1, 1)
        fused = torch.cat([_unit(fusions[k]) for k in kinds])
        cdd = compute_metrics(ir, vis, fused)
        std = compute_metrics(ir, vis, fused, names=["PSNR"], convention="standard")
        for i, kind in enumerate(kinds):
            out[pair, kind] = {
                "cddfuse": {k: float(v[i]) for k, v in cdd.items()},
                "standard": {k: float(v[i]) for k, v in std.items()},
            }
    return out


def _fixture_rows() -> list[tuple[str, str, str, float, str]]:
    table = pd.read_csv(FIXTURE)
    table = table[table.metric.isin(METRIC_NAMES)]
    return [
        tuple(r)
        for r in table[["pair", "fusion", "metric", "value", "source"]].itertuples(index=False)
    ]


@pytest.mark.parametrize(("pair", "fusion", "metric", "value", "source"), _fixture_rows())
def test_matches_reference_fixture(fixture_results, pair, fusion, metric, value, source):
    convention = "standard" if source == "standard" else "cddfuse"
    got = fixture_results[pair, fusion][convention][metric]
    if metric == "Nabf":
        assert got == pytest.approx(value, abs=NABF_ATOL)
        assert got == pytest.approx(
            value, rel=PORT_RTOL * 5
        )  # tiny values: a looser relative check too
    elif source == "both":
        assert got == pytest.approx(value, rel=PORT_RTOL)
    elif metric == "SSIM":
        assert got == pytest.approx(value, rel=CDDFUSE_SSIM_RTOL)
    else:
        assert got == pytest.approx(value, rel=CDDFUSE_RTOL)


def test_fixture_covers_every_metric():
    rows = _fixture_rows()
    assert {r[2] for r in rows} == set(METRIC_NAMES)
    assert {(r[0], r[1]) for r in rows} == {
        (p, f) for p in ("TNO_001", "TNO_005") for f in ("mean", "max", "w73")
    }


def test_vendored_fixtures_equal_the_shared_originals(shared):
    """The vendored table is the shared one byte for byte; the re-encoded TNO images have the
    shared images' pixels (tests/fixtures/SOURCE.md)."""
    assert FIXTURE.read_bytes() == shared("fixtures", "fusion_metrics_reference.csv").read_bytes()
    tno = shared("data", "tno37")
    vendored = sorted(p.relative_to(TNO) for p in TNO.rglob("*.png"))
    assert len(vendored) == 6
    for rel in vendored:
        np.testing.assert_array_equal(
            _read_grey(TNO / rel), _read_grey(tno / rel), err_msg=str(rel)
        )


# ----------------------------------------------------------------------------------------------
# independent re-implementations on data that is not in the fixture


def _np_entropy(f: np.ndarray) -> float:
    p = np.bincount(f.astype(np.int64).ravel(), minlength=256) / f.size
    p = p[p > 0]
    return float(-(p * np.log2(p)).sum())


def _np_sf(f: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.diff(f, axis=1) ** 2) + np.mean(np.diff(f, axis=0) ** 2)))


def _np_ag(f: np.ndarray) -> float:
    gy, gx = np.gradient(f)
    return float(np.mean(np.sqrt((gx**2 + gy**2) / 2)))


def _np_mi(x: np.ndarray, y: np.ndarray) -> float:
    joint, _, _ = np.histogram2d(
        x.ravel(), y.ravel(), bins=256, range=[[-0.5, 255.5], [-0.5, 255.5]]
    )
    p = joint / joint.sum()
    px, py = p.sum(1, keepdims=True), p.sum(0, keepdims=True)
    nz = p > 0
    return float((p[nz] * np.log(p[nz] / (px @ py)[nz])).sum())


def _np_ssim_gaussian(x: np.ndarray, y: np.ndarray) -> float:
    """Wang et al. SSIM, written out per window with two-pass (centred) moments."""
    g = np.exp(-((np.arange(11) - 5.0) ** 2) / (2 * 1.5**2))
    w = np.outer(g, g) / np.outer(g, g).sum()
    wx = np.lib.stride_tricks.sliding_window_view(x, (11, 11))
    wy = np.lib.stride_tricks.sliding_window_view(y, (11, 11))
    mx = (wx * w).sum((-2, -1))
    my = (wy * w).sum((-2, -1))
    dx, dy = wx - mx[..., None, None], wy - my[..., None, None]
    vx, vy, cxy = (
        (dx * dx * w).sum((-2, -1)),
        (dy * dy * w).sum((-2, -1)),
        (dx * dy * w).sum((-2, -1)),
    )
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    return float(
        np.mean((2 * mx * my + c1) * (2 * cxy + c2) / ((mx**2 + my**2 + c1) * (vx + vy + c2)))
    )


def _np_vif(ref: np.ndarray, dist: np.ndarray) -> float:
    """Pixel-domain VIF written with scipy.signal.convolve2d, as the evaluator does it."""
    num = den = 0.0
    for scale in range(4):
        n = 2 ** (4 - scale) + 1
        ax = np.arange(n) - (n - 1) / 2
        h = np.exp(-(ax[:, None] ** 2 + ax[None, :] ** 2) / (2 * (n / 5.0) ** 2))
        h[h < np.finfo(float).eps * h.max()] = 0
        win = h / h.sum()
        if scale > 0:
            ref = convolve2d(ref, win, mode="valid")[::2, ::2]
            dist = convolve2d(dist, win, mode="valid")[::2, ::2]
        mu1, mu2 = convolve2d(ref, win, mode="valid"), convolve2d(dist, win, mode="valid")
        s1 = np.maximum(convolve2d(ref * ref, win, mode="valid") - mu1 * mu1, 0)
        s2 = np.maximum(convolve2d(dist * dist, win, mode="valid") - mu2 * mu2, 0)
        s12 = convolve2d(ref * dist, win, mode="valid") - mu1 * mu2
        g = s12 / (s1 + 1e-10)
        sv = s2 - g * s12
        g[s1 < 1e-10], sv[s1 < 1e-10], s1[s1 < 1e-10] = 0, s2[s1 < 1e-10], 0
        g[s2 < 1e-10], sv[s2 < 1e-10] = 0, 0
        sv[g < 0] = s2[g < 0]
        g[g < 0] = 0
        sv[sv <= 1e-10] = 1e-10
        num += np.sum(np.log10(1 + g * g * s1 / (sv + 2.0)))
        den += np.sum(np.log10(1 + s1 / 2.0))
    return float(num / den)


def _np_qabf(a: np.ndarray, b: np.ndarray, f: np.ndarray, convention: str) -> float:
    hx = np.array([[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]], float)
    hy = np.array([[1, 2, 1], [0, 0, 0], [-1, -2, -1]], float)

    def edges(x):
        sx, sy = convolve2d(x, hx, mode="same"), convolve2d(x, hy, mode="same")
        with np.errstate(divide="ignore", invalid="ignore"):
            alpha = np.where(sx == 0, np.pi / 2, np.arctan(sy / sx))
        return np.hypot(sx, sy), alpha

    def q(gs, als, gf, alf):
        with np.errstate(divide="ignore", invalid="ignore"):
            ratio = np.where(gs > gf, gf / gs, gs / gf)
        ratio = np.where(gs == gf, gf if convention == "cddfuse" else 1.0, ratio)
        orient = 1 - np.abs(als - alf) / (np.pi / 2)
        return (
            0.9994 / (1 + np.exp(-15 * (ratio - 0.5))) * 0.9879 / (1 + np.exp(-22 * (orient - 0.8)))
        )

    (ga, aa), (gb, ab), (gf, af) = edges(a), edges(b), edges(f)
    return float(np.sum(q(ga, aa, gf, af) * ga + q(gb, ab, gf, af) * gb) / np.sum(ga + gb))


def _np_fmi(a: np.ndarray, b: np.ndarray, f: np.ndarray) -> float:
    """Haghighat FMI (3x3) by the definition: the full 9 x 9 joint pdf of every window."""

    def windows(x):
        v = np.lib.stride_tricks.sliding_window_view(x, (3, 3))
        return v.transpose(0, 1, 3, 2).reshape(-1, 9)  # column-major inside the window

    def pdf(v):
        lo, hi = v.min(1, keepdims=True), v.max(1, keepdims=True)
        u = np.where(hi == lo, 1.0, (v - lo) / np.where(hi == lo, 1.0, hi - lo))
        return u / u.sum(1, keepdims=True)

    def entropy(p):
        mag = np.abs(p)
        return -(p * np.log2(np.where(mag > 0, mag, 1.0))).sum(-1)

    def spread(p):
        k = np.arange(1, 10)
        m = (k * p).sum(1)
        return np.sqrt(np.abs((k * k * p).sum(1) - m * m))

    def nfmi(ps, pf):
        cs, cf = np.cumsum(ps, 1), np.cumsum(pf, 1)
        ts, tf = ps - ps.mean(1, keepdims=True), pf - pf.mean(1, keepdims=True)
        den = (ts * ts).sum(1) * (tf * tf).sum(1)
        c = (ts * tf).sum(1) / np.sqrt(np.where(den == 0, 1, den))
        upper = np.minimum(cf[:, :, None], cs[:, None, :])
        lower = np.maximum(cf[:, :, None] + cs[:, None, :] - 1, 0)
        prod = cf[:, :, None] * cs[:, None, :]
        bound = np.where((c >= 0)[:, None, None], upper, lower)
        d = (bound - prod).sum((1, 2))
        theta = c * spread(ps) * spread(pf) / np.where(d == 0, 1, d)
        h = np.pad(bound, ((0, 0), (1, 0), (1, 0)))
        coupling = h[:, 1:, 1:] - h[:, :-1, 1:] - h[:, 1:, :-1] + h[:, :-1, :-1]
        joint = (
            theta[:, None, None] * coupling
            + (1 - theta[:, None, None]) * pf[:, :, None] * ps[:, None, :]
        )
        both = entropy(ps) + entropy(pf)
        mi_ = both - entropy(joint.reshape(len(joint), -1))
        return np.where(both == 0, 1.0, 2 * mi_ / np.where(both == 0, 1, both))

    pa, pb, pf = pdf(windows(a)), pdf(windows(b)), pdf(windows(f))
    return float(np.mean((nfmi(pa, pf) + nfmi(pb, pf)) / 2))


@pytest.fixture(scope="module")
def other_pair() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """TNO_025 (not in the fixture) and a weighted fusion of it."""
    a = _read_grey(TNO / "ir" / "TNO_025.png").astype(np.float64)
    b = _read_grey(TNO / "vis" / "TNO_025.png").astype(np.float64)
    return a, b, np.clip(np.rint(0.45 * a + 0.55 * b + 3.0), 0, 255)


def test_single_image_metrics_match_numpy(other_pair):
    a, b, f = other_pair
    got = compute_metrics(_unit(a / 255 * 255), _unit(b), _unit(f), names=["EN", "SD", "SF", "AG"])
    assert float(got["EN"]) == pytest.approx(_np_entropy(f), rel=1e-12)
    assert float(got["SD"]) == pytest.approx(float(np.std(f)), rel=1e-12)
    assert float(got["SF"]) == pytest.approx(_np_sf(f), rel=1e-12)
    assert float(got["AG"]) == pytest.approx(_np_ag(f), rel=1e-12)


def test_mi_matches_numpy_histograms(other_pair):
    a, b, f = other_pair
    want = _np_mi(f, a) + _np_mi(f, b)
    assert float(mi(_unit(a), _unit(b), _unit(f))) == pytest.approx(want, rel=1e-10)
    assert float(mi(_unit(a), _unit(b), _unit(f), convention="standard")) == pytest.approx(
        want / math.log(2), rel=1e-10
    )


def test_standard_ssim_matches_direct_formula(other_pair):
    a, b, f = (x[60:100, 80:130] for x in other_pair)
    want = _np_ssim_gaussian(f, a) + _np_ssim_gaussian(f, b)
    assert float(ssim(_unit(a), _unit(b), _unit(f), convention="standard")) == pytest.approx(
        want, rel=1e-9
    )


def test_vif_matches_convolve2d_reference(other_pair):
    a, b, f = (x[40:120, 60:150] for x in other_pair)
    want = _np_vif(a, f) + _np_vif(b, f)
    assert float(vif(_unit(a), _unit(b), _unit(f))) == pytest.approx(want, rel=1e-9)


@pytest.mark.parametrize("convention", ["cddfuse", "standard"])
def test_qabf_matches_convolve2d_reference(other_pair, convention):
    a, b, f = (x[40:100, 60:140] for x in other_pair)
    want = _np_qabf(a, b, f, convention)
    assert float(qabf(_unit(a), _unit(b), _unit(f), convention=convention)) == pytest.approx(
        want, rel=1e-6
    )


def test_fmi_matches_full_joint_pdf_on_real_crop(other_pair):
    a, b, f = (x[100:130, 150:190] for x in other_pair)
    want = _np_fmi(a, b, f)
    assert float(fmi_pixel(_unit(a), _unit(b), _unit(f))) == pytest.approx(want, rel=2e-6)


def test_fmi_matches_full_joint_pdf_with_flat_and_anticorrelated_windows():
    rng = np.random.default_rng(3)
    a = rng.integers(0, 256, (17, 19)).astype(np.float64)
    b = 255.0 - a  # anti-correlated windows use the lower Frechet bound
    f = np.clip(a + rng.integers(-30, 30, a.shape), 0, 255)
    a[:6, :6] = 7.0  # flat windows
    f[8:14, 5:12] = 200.0
    b[::2] = np.floor(b[::2] / 32) * 32  # ties between bins
    want = _np_fmi(a, b, f)
    assert float(fmi_pixel(_unit(a), _unit(b), _unit(f))) == pytest.approx(want, rel=2e-6)


# ----------------------------------------------------------------------------------------------
# properties


def test_metric_names_and_order():
    assert (
        METRIC_NAMES
        == "EN SD SF AG MI SCD VIF Qabf SSIM PSNR MSE CC Nabf MS_SSIM FMI_pixel".split()
    )


def test_fusing_an_image_with_itself():
    x = _smooth_images(1, 168, 172, seed=1)
    got = {k: float(v) for k, v in compute_metrics(x, x, x).items()}
    assert got["SSIM"] == pytest.approx(2.0, abs=1e-12)
    assert got["MS_SSIM"] == pytest.approx(1.0, abs=1e-6)
    assert got["MSE"] == 0.0
    assert math.isinf(got["PSNR"])
    assert got["CC"] == pytest.approx(1.0, abs=1e-12)
    assert got["VIF"] == pytest.approx(2.0, abs=1e-6)
    assert got["Nabf"] == 0.0
    # identical windows: theta = 1 and MI = H, so 1 each; flat windows have no correlation: 0
    win = np.lib.stride_tricks.sliding_window_view(_levels(x), (3, 3))
    textured = float(np.mean(win.max((-2, -1)) > win.min((-2, -1))))
    assert 0.9 < textured < 1.0
    assert got["FMI_pixel"] == pytest.approx(textured, abs=1e-5)
    # MI(F, F) is the entropy of F: in bits, twice EN
    std = compute_metrics(x, x, x, names=["MI", "Qabf", "EN"], convention="standard")
    assert float(std["MI"]) == pytest.approx(2 * float(std["EN"]), rel=1e-12)
    # textbook Qabf of a perfect copy: Qg(1) * Qa(1) everywhere
    perfect = 0.9994 / (1 + math.exp(-15 * 0.5)) * 0.9879 / (1 + math.exp(-22 * 0.2))
    assert float(std["Qabf"]) == pytest.approx(perfect, rel=1e-6)


def test_constant_images():
    c = torch.full((1, 1, 30, 40), 100 / 255, dtype=torch.float64)
    got = {k: float(v) for k, v in compute_metrics(c, c, c).items()}
    for name in ("EN", "SD", "SF", "AG", "MI", "MSE", "Nabf"):
        assert got[name] == 0.0, name
    assert got["VIF"] == 2.0  # no information to lose: 1 per source
    assert got["FMI_pixel"] == pytest.approx(
        0.0, abs=1e-7
    )  # flat windows: uniform, independent bins
    assert math.isnan(got["CC"])  # no variance: undefined
    assert 0.0 < got["Qabf"] <= 1.0  # zero padding puts edges on the border


def test_symmetric_in_the_two_sources():
    ir, vis, fused = _triple(2, 36, 44, seed=4)
    ab = compute_metrics(ir, vis, fused)
    ba = compute_metrics(vis, ir, fused)
    for name in METRIC_NAMES:
        torch.testing.assert_close(
            ab[name], ba[name], rtol=1e-6, atol=1e-9, equal_nan=True, msg=name
        )


def test_value_ranges():
    ir, vis, fused = _triple(3, 170, 176, seed=5)
    got = compute_metrics(ir, vis, torch.maximum(ir, vis))
    bounds = {
        "EN": (0, 8), "SD": (0, 127.5), "SF": (0, 255), "AG": (0, 255), "MI": (0, 2 * math.log(256)),
        "SCD": (-2, 2), "VIF": (0, 4), "Qabf": (0, 1), "SSIM": (-2, 2), "PSNR": (0, math.inf),
        "MSE": (0, 255**2), "CC": (-1, 1), "Nabf": (0, 1), "MS_SSIM": (0, 1), "FMI_pixel": (0, 1),
    }  # fmt: skip
    for name, (lo, hi) in bounds.items():
        values = got[name]
        assert values.shape == (3,) and values.dtype == torch.float64, name
        assert bool(((values >= lo - 1e-6) & (values <= hi + 1e-6)).all()), (name, values)


def test_batch_equals_single_images():
    ir, vis, fused = _triple(3, 36, 40, seed=6)
    batch = compute_metrics(ir, vis, fused)
    for i in range(3):
        single = compute_metrics(ir[i : i + 1], vis[i : i + 1], fused[i : i + 1])
        for name in METRIC_NAMES:
            torch.testing.assert_close(
                batch[name][i : i + 1], single[name], rtol=1e-9, atol=0, equal_nan=True, msg=name
            )


def test_conventions_differ_where_they_should():
    ir, vis, fused = _triple(1, 48, 56, seed=7)
    fused = fused * 0.9  # max(F) < 255, so the PSNR peaks differ
    cdd = compute_metrics(ir, vis, fused)
    std = compute_metrics(ir, vis, fused, convention="standard")
    assert float(std["MI"]) == pytest.approx(float(cdd["MI"]) / math.log(2), rel=1e-12)
    peak = float(grey_levels(fused).max())
    assert float(std["PSNR"]) - float(cdd["PSNR"]) == pytest.approx(
        20 * math.log10(255 / peak), rel=1e-9
    )
    assert abs(float(std["SSIM"]) - float(cdd["SSIM"])) > 1e-3
    # Qabf differs only where a source's edge strength equals the fused one (copied regions)
    assert float(std["Qabf"]) == float(cdd["Qabf"])
    copied = torch.maximum(ir, vis)
    # there G = gF (>= 1 on 8-bit data) saturates Qg a little above its value at G = 1
    assert float(qabf(ir, vis, copied)) > float(qabf(ir, vis, copied, convention="standard")) + 1e-5
    for name in set(METRIC_NAMES) - {"MI", "PSNR", "SSIM"}:
        torch.testing.assert_close(std[name], cdd[name], equal_nan=True, msg=name)


def test_colour_inputs_use_rounded_bt601_luminance():
    gen = torch.Generator().manual_seed(8)
    rgb = (torch.rand(1, 3, 32, 36, generator=gen, dtype=torch.float64) * 255).round() / 255
    ir, _, fused = _triple(1, 32, 36, seed=8)
    y = np.rint(rgb[0].numpy().transpose(1, 2, 0) * 255.0) @ np.array([0.299, 0.587, 0.114])
    grey = torch.from_numpy(np.rint(y) / 255.0)[None, None]
    colour_fused = fused.repeat(1, 3, 1, 1)
    a = compute_metrics(ir, rgb, colour_fused)
    b = compute_metrics(ir, grey, fused)
    for name in METRIC_NAMES:
        torch.testing.assert_close(a[name], b[name], equal_nan=True, msg=name)


def test_float32_and_float64_inputs_agree():
    ir, vis, fused = _triple(1, 30, 34, seed=9)
    a = compute_metrics(ir, vis, fused)
    b = compute_metrics(ir.float(), vis.float(), fused.float())
    for name in METRIC_NAMES:
        torch.testing.assert_close(a[name], b[name], equal_nan=True, msg=name)


def test_multiscale_metrics_are_nan_below_their_minimum_size(caplog):
    ir, vis, fused = _triple(1, 64, 200, seed=10)
    assert math.isnan(float(compute_metrics(ir, vis, fused, names=["MS_SSIM"])["MS_SSIM"]))
    assert "MS_SSIM needs images" in caplog.text
    small = compute_metrics(ir[..., :14, :30], vis[..., :14, :30], fused[..., :14, :30])
    assert math.isnan(float(small["VIF"])) and "VIF needs images" in caplog.text
    assert not math.isnan(float(small["SSIM"]))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
def test_cuda_matches_cpu():
    ir, vis, fused = _triple(2, 170, 180, seed=11)
    cpu = compute_metrics(ir, vis, fused)
    gpu = compute_metrics(ir.cuda(), vis.cuda(), fused.cuda())
    for name in METRIC_NAMES:
        assert gpu[name].device.type == "cuda"
        torch.testing.assert_close(
            gpu[name].cpu(), cpu[name], rtol=2e-5, atol=1e-8, equal_nan=True, msg=name
        )


# ----------------------------------------------------------------------------------------------
# input errors


def test_rejects_bad_inputs():
    ir, vis, fused = _triple(1, 20, 24)
    with pytest.raises(ValueError, match="unknown fusion metric 'FMI_w'"):
        compute_metrics(ir, vis, fused, names=["FMI_w"])
    with pytest.raises(ValueError, match="unknown metric convention 'matlab'"):
        compute_metrics(ir, vis, fused, convention="matlab")
    with pytest.raises(ValueError, match="values must lie in \\[0, 1\\]"):
        compute_metrics(ir * 255, vis, fused)
    with pytest.raises(ValueError, match="B x C x H x W"):
        compute_metrics(ir[0], vis, fused)
    with pytest.raises(ValueError, match="1 \\(grey\\) or 3 \\(RGB\\) channels"):
        compute_metrics(ir.repeat(1, 2, 1, 1), vis, fused)
    with pytest.raises(ValueError, match="share batch size and height x width"):
        compute_metrics(ir, vis[..., :-1], fused)
    with pytest.raises(ValueError, match="too small"):
        compute_metrics(ir[..., :8, :8], vis[..., :8, :8], fused[..., :8, :8])
    with pytest.raises(TypeError, match="float tensor"):
        en((fused * 255).to(torch.uint8))


def test_public_functions_agree_with_compute_metrics():
    ir, vis, fused = _triple(2, 30, 36, seed=12)
    suite = compute_metrics(ir, vis, fused, convention="standard")
    torch.testing.assert_close(psnr(ir, vis, fused, convention="standard"), suite["PSNR"])
    torch.testing.assert_close(en(fused), suite["EN"])
    torch.testing.assert_close(fmi_pixel(ir, vis, fused), suite["FMI_pixel"])


def test_metrics_config_validates():
    assert from_dict(
        MetricsConfig, {"convention": "standard", "names": ["EN", "MI"]}, "params.yaml:metrics"
    ).names == ["EN", "MI"]
    with pytest.raises(ConfigError, match="unknown metric 'ENT'"):
        from_dict(MetricsConfig, {"names": ["ENT"]}, "params.yaml:metrics")
    with pytest.raises(ConfigError, match="convention"):
        from_dict(MetricsConfig, {"convention": "bits"}, "params.yaml:metrics")


# ----------------------------------------------------------------------------------------------
# collection and folders


def test_collection_accumulates_rows_and_mean():
    ir, vis, fused = _triple(3, 28, 32, seed=13)
    col = FusionMetricCollection(names=["EN", "SSIM", "MSE"])
    col.update(ir[:2], vis[:2], fused[:2], ["a", "b"])
    col.update(ir[2:], vis[2:], fused[2:], ["c"])
    table = col.compute()
    assert list(table.columns) == ["name", "EN", "SSIM", "MSE"]
    assert list(table["name"]) == ["a", "b", "c"]  # images only: no summary row
    direct = compute_metrics(ir, vis, fused, names=["EN", "SSIM", "MSE"])
    means = table_means(table)
    for name in ("EN", "SSIM", "MSE"):
        np.testing.assert_allclose(table[name], direct[name].numpy(), rtol=1e-12)
        assert means[name] == pytest.approx(float(direct[name].mean()), rel=1e-12)
    with pytest.raises(ValueError, match="already added"):
        col.update(ir[:1], vis[:1], fused[:1], ["a"])
    with pytest.raises(ValueError, match="one stem per image"):
        col.update(ir[:2], vis[:2], fused[:2], ["d"])
    col.reset()
    with pytest.raises(ValueError, match="no images were added"):
        col.compute()


def _write_folder_case(root: Path) -> tuple[Path, Path, Path, dict[str, tuple[np.ndarray, ...]]]:
    ir_dir, vis_dir, fused_dir = root / "ir", root / "vis", root / "fused"
    images = {}
    sizes = {"s1": (40, 44), "s2": (40, 44), "s3": (36, 50)}
    for i, (stem, (h, w)) in enumerate(sizes.items()):
        ir, vis, fused = _triple(1, h, w, seed=20 + i)
        to8 = lambda t: np.rint(t[0, 0].numpy() * 255).astype(np.uint8)  # noqa: E731
        a, b, f = to8(ir), to8(vis), to8(fused)
        if stem == "s2":  # a colour visible image and a colour fused one
            b = np.stack([b, np.roll(b, 3, axis=1), b // 2], axis=-1)
            f = np.stack([f, f, np.roll(f, 1, axis=0)], axis=-1)
        write_image(ir_dir / f"{stem}.png", a)
        write_image(vis_dir / f"{stem}{'.bmp' if stem == 's3' else '.png'}", b)
        write_image(fused_dir / f"{stem}.png", f)
        images[stem] = (a, b, f)
    return ir_dir, vis_dir, fused_dir, images


def test_evaluate_folders_pairs_by_stem(tmp_path, caplog):
    ir_dir, vis_dir, fused_dir, images = _write_folder_case(tmp_path)
    write_image(fused_dir / "orphan.png", images["s1"][2])
    names = ["EN", "MI", "SSIM", "Qabf", "FMI_pixel"]
    table = evaluate_folders(
        ir_dir, vis_dir, fused_dir, names=names, progress=False, batch_size=4, device="auto"
    )
    assert list(table["name"]) == ["s1", "s2", "s3"]
    assert "orphan.png" in caplog.text
    for i, stem in enumerate(["s1", "s2", "s3"]):
        a, b, f = images[stem]

        def tensor(x):
            return (
                torch.from_numpy(x / 255.0)[None, None]
                if x.ndim == 2
                else torch.from_numpy(x.transpose(2, 0, 1) / 255.0)[None]
            )  # noqa: E731

        want = compute_metrics(tensor(a), tensor(b), tensor(f), names=names)
        for name in names:
            assert table[name].iloc[i] == pytest.approx(float(want[name]), rel=1e-6), (stem, name)


def test_evaluate_folders_errors_name_the_file(tmp_path):
    ir_dir, vis_dir, fused_dir, images = _write_folder_case(tmp_path)
    (fused_dir / "s2.png").unlink()
    with pytest.raises(ImageError, match="no fused image for 's2'"):
        evaluate_folders(ir_dir, vis_dir, fused_dir, names=["EN"], progress=False)
    write_image(fused_dir / "s2.png", images["s2"][2][:-2])
    with pytest.raises(ImageError, match="s2.png: size 44x38 differs from its sources \\(44x40\\)"):
        evaluate_folders(ir_dir, vis_dir, fused_dir, names=["EN"], progress=False)
    (vis_dir / "s1.png").unlink()
    with pytest.raises(ImageError, match="no visible partner"):
        evaluate_folders(ir_dir, vis_dir, fused_dir, names=["EN"], progress=False)
