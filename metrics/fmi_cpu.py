"""CPU kernel of FMI_pixel (3x3 windows) compiled with numba; the method is `metrics.fmi`'s.

`fmi_maps_cpu` computes the same per-window (FMI_AF + FMI_BF) / 2 as the torch path of
`metrics.fmi` (read its docstring for the algorithm: the integer CDF staircase of the
comonotone/countermonotone coupling and the closed-form entropy of the product part), window by
window and in float64 rather than the torch path's float32:
- everything but the entropies is exact integer arithmetic: the covariance, the squared spreads
  and the denominator of theta are integers, so flat, tied and uncorrelated windows take exactly
  the torch path's branches;
- log2 n and n log2 n of integers come from tables (log2 of a product is a sum of logs);
- the one real-valued m log2|m| per staircase cell uses `_log2_abs`, an atanh series (error
  below 1e-10), because `math.log2` is a library call that stops LLVM from vectorising the loop.

Layout, chosen so that LLVM vectorises every loop: one output row per parallel task (prange);
inside a row, windows are processed in blocks of `BLOCK` consecutive columns, and each
per-window quantity of a block is one row of `BLOCK` values in flat scratch arrays (int32 and
float64) at offsets that are compile-time constants. Loops run over the block's columns with a
constant trip count, touch only the scratch arrays and the constant tables (so the few runtime
alias checks can be generated) and index with non-negative constant offsets (no wraparound
selects). The last block of a row is shifted left to end at the row's end, recomputing a few
windows, and images narrower than a block are edge-padded first.
"""

from __future__ import annotations

import logging
import math

import numpy as np
import torch
from numba import njit, prange, types
from numba.extending import intrinsic

log = logging.getLogger(__name__)

#: windows per block
BLOCK = 64
_MAX_TOTAL = 9 * 255
_BIG = 2**31 - 1  # above every packed key
# no nnan/ninf: masked-out lanes may divide by zero
_FASTMATH = {"nsz", "arcp", "contract", "afn", "reassoc"}


def _jit(**options):
    """numba.njit with an on-disk cache where numba finds a writable place for one (next to
    the module, NUMBA_CACHE_DIR or the user's cache directory), without it elsewhere."""

    def decorate(fn):
        try:
            return njit(cache=True, **options)(fn)
        except RuntimeError as err:  # no cache locator: a read-only install without a home
            log.debug("numba cache unavailable for %s (%s); compiling in memory", fn.__name__, err)
            return njit(**options)(fn)

    return decorate


# --- int32 scratch rows (each BLOCK long) ---
# a window's marginal: u = values - minimum (all ones if flat), cumulative u, sum u, sum u^2,
# sum (9 - k) u_k (the sum of the CDF times the total); bins in MATLAB's column-major order
_U, _CUM, _TOT, _SQ, _CS = 0, 9, 18, 19, 20
_M_ROWS = 21
_FI = 0  # the fused window's marginal
_SI = _M_ROWS  # the current source window's marginal
_P = 2 * _M_ROWS  # the (source, fused) pair:
_U2 = _P + 0  # source u in the coupling's order (bins reversed when cov < 0)
_NS = _P + 9  # source CDF breakpoints on the common integer scale: cum_s * tot_f
_NF = _P + 18  # fused CDF breakpoints: cum_f * tot_s
_KS = _P + 27  # breakpoints packed with their bin's u: numerator * 256 + (255 - u)
_KF = _P + 36
_NXS = _P + 45  # per fused breakpoint k: packed key of the first source breakpoint >= it
_CNS = _P + 54  # per fused breakpoint k: number of source breakpoints >= it
_NXF = _P + 63  # per source breakpoint j: packed key of the first fused breakpoint > it
_CNF = _P + 72  # per source breakpoint j: number of fused breakpoints > it
_COV = _P + 81  # 9 sum(u_s u_f) - tot_s tot_f: the covariance, its sign picks the bound
_I_ROWS = _P + 82

# --- float64 scratch rows ---
_LOG, _VAR, _ENT = 0, 9, 10  # log2 u_k; tot sum(k^2 u) - (sum(k u))^2; entropy in bits
_MF_ROWS = 11
_FF = 0
_SF = _MF_ROWS
_LS2 = 2 * _MF_ROWS  # log2 of _U2
# the staircase cells ended by fused breakpoints 0..8 and source breakpoints 0..7 (the cell of
# source breakpoint 8 is always empty): overlap, and product u_f u_s (0 for an empty cell), in
# units 1 / (tot_s tot_f)
_CELLS = 17
_OV = _LS2 + 9
_Q = _OV + _CELLS
_F_ROWS = _Q + _CELLS

# --- float64 per-window accumulators ---
_SUMW = 0  # sum over cells of overlap (9 - i)(9 - j): tot_s tot_f sum of min(cdfS_j, cdfF_i)
_SUMQ = 1  # sum of the cells' products q
_QLQ = 2  # sum of q log2 q
_THETA = 3
_XLX = 4  # sum of m log2|m| over the cells' mixed masses m = theta overlap + (1 - theta) q
_RES = 5  # (FMI_AF + FMI_BF) / 2
_A_ROWS = 6


def log_tables() -> tuple[np.ndarray, np.ndarray]:
    """log2 n and n log2 n for n = 0..9*255 (0 at 0)."""
    n = np.arange(_MAX_TOTAL + 1, dtype=np.float64)
    log2 = np.zeros_like(n)
    log2[1:] = np.log2(n[1:])
    return log2, n * log2


# global arrays are frozen into the compiled code as constants, which tells LLVM that they do
# not alias the scratch (passed as arguments, they would block vectorisation of the gathers)
_LOG2, _NLOGN = log_tables()


@intrinsic
def _as_int(typingctx, x):
    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], context.get_value_type(types.int64))

    return types.int64(types.float64), codegen


@intrinsic
def _as_float(typingctx, x):
    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], context.get_value_type(types.float64))

    return types.float64(types.int64), codegen


_SQRT_HALF_BITS = 0x3FE6A09E667F3BCD  # bits of the float64 sqrt(2) / 2
_MANTISSA = (1 << 52) - 1
_NO_SIGN = (1 << 63) - 1
_TWO_OVER_LN2 = 2.0 / math.log(2.0)


@_jit(inline="always", fastmath=_FASTMATH, error_model="numpy")
def _log2_abs(x):
    """log2|x| for finite x != 0 with an absolute error below 1e-10; finite at 0.

    |x| = 2^e m with m in [sqrt(2)/2, sqrt(2)); ln m = 2 atanh(s), s = (m - 1) / (m + 1) and
    |s| < 0.172, so the atanh series up to s^11 leaves a relative error below 5e-11.
    """
    bits = (_as_int(x) & _NO_SIGN) - _SQRT_HALF_BITS
    m = _as_float((bits & _MANTISSA) + _SQRT_HALF_BITS)
    s = (m - 1.0) / (m + 1.0)
    s2 = s * s
    series = 1.0 + s2 * (1 / 3 + s2 * (1 / 5 + s2 * (1 / 7 + s2 * (1 / 9 + s2 * (1 / 11)))))
    return (bits >> 52) + _TWO_OVER_LN2 * s * series


@_jit(fastmath=_FASTMATH, error_model="numpy")
def log2_abs(x: np.ndarray) -> np.ndarray:
    """`_log2_abs` elementwise (for tests)."""
    out = np.empty_like(x)
    for i in range(x.size):
        out[i] = _log2_abs(x[i])
    return out


# inlined so that io and fo become constants at each call site
@_jit(inline="always", fastmath=_FASTMATH, error_model="numpy")
def _marginals(r0, r1, r2, wi, wf, io, fo):
    """Distributions of the block's windows of one image (r0..r2: its three rows from the
    block's first column) into the scratch rows at io (int) and fo (float)."""
    for c in range(BLOCK):
        # bin k is row k % 3, column k // 3 of the window (column-major)
        v0, v1, v2 = np.int32(r0[c]), np.int32(r1[c]), np.int32(r2[c])
        v3, v4, v5 = np.int32(r0[c + 1]), np.int32(r1[c + 1]), np.int32(r2[c + 1])
        v6, v7, v8 = np.int32(r0[c + 2]), np.int32(r1[c + 2]), np.int32(r2[c + 2])
        lo = min(v0, v1, v2, v3, v4, v5, v6, v7, v8)
        hi = max(v0, v1, v2, v3, v4, v5, v6, v7, v8)
        wi[(io + _U) * BLOCK + c] = v0
        wi[(io + _U + 1) * BLOCK + c] = v1
        wi[(io + _U + 2) * BLOCK + c] = v2
        wi[(io + _U + 3) * BLOCK + c] = v3
        wi[(io + _U + 4) * BLOCK + c] = v4
        wi[(io + _U + 5) * BLOCK + c] = v5
        wi[(io + _U + 6) * BLOCK + c] = v6
        wi[(io + _U + 7) * BLOCK + c] = v7
        wi[(io + _U + 8) * BLOCK + c] = v8
        # a flat window becomes all ones (uniform), not all zeros
        lo -= hi == lo
        tot = 0
        sq = 0
        cs = 0
        s1 = 0
        s2 = 0
        ulogu = 0.0
        for k in range(9):
            u = wi[(io + _U + k) * BLOCK + c] - lo
            wi[(io + _U + k) * BLOCK + c] = u
            tot += u
            wi[(io + _CUM + k) * BLOCK + c] = tot
            sq += u * u
            cs += (9 - k) * u
            s1 += (k + 1) * u
            s2 += (k + 1) * (k + 1) * u
            wf[(fo + _LOG + k) * BLOCK + c] = _LOG2[u]
            ulogu += _NLOGN[u]
        wi[(io + _TOT) * BLOCK + c] = tot
        wi[(io + _SQ) * BLOCK + c] = sq
        wi[(io + _CS) * BLOCK + c] = cs
        wf[(fo + _VAR) * BLOCK + c] = float(tot) * float(s2) - float(s1) * float(s1)
        # -sum p log2 p = (tot log2 tot - sum(u log2 u)) / tot: both from the same table, so
        # exactly 0 for a single nonzero bin (such windows count as perfect matches)
        wf[(fo + _ENT) * BLOCK + c] = (_NLOGN[tot] - ulogu) / tot


@_jit(fastmath=_FASTMATH, error_model="numpy")
def _pair(wi, wf, acc):
    """Add FMI(source, fused) / 2 of the block's windows to the result row of acc."""
    # covariance; both CDFs' breakpoints on the common integer scale, packed with their u
    for c in range(BLOCK):
        ts = wi[(_SI + _TOT) * BLOCK + c]
        tf = wi[(_FI + _TOT) * BLOCK + c]
        dot = 0
        for k in range(9):
            dot += wi[(_SI + _U + k) * BLOCK + c] * wi[(_FI + _U + k) * BLOCK + c]
        cov = 9 * dot - ts * tf
        wi[_COV * BLOCK + c] = cov
        positive = cov >= 0
        for k in range(9):
            # a negative correlation couples F with the source's bins reversed; both values are
            # loaded and one selected (a selected address would stop vectorisation)
            us = wi[(_SI + _U + k) * BLOCK + c]
            us_rev = wi[(_SI + _U + 8 - k) * BLOCK + c]
            us = us if positive else us_rev
            cum = wi[(_SI + _CUM + k) * BLOCK + c]
            cum_rev = ts - wi[(_SI + _CUM + max(7 - k, 0)) * BLOCK + c] if k < 8 else ts
            cum = cum if positive else cum_rev
            wi[(_U2 + k) * BLOCK + c] = us
            ns = cum * tf
            wi[(_NS + k) * BLOCK + c] = ns
            wi[(_KS + k) * BLOCK + c] = ns * 256 + (255 - us)
            uf = wi[(_FI + _U + k) * BLOCK + c]
            nf = wi[(_FI + _CUM + k) * BLOCK + c] * ts
            wi[(_NF + k) * BLOCK + c] = nf
            wi[(_KF + k) * BLOCK + c] = nf * 256 + (255 - uf)
    for c in range(BLOCK):
        positive = wi[_COV * BLOCK + c] >= 0
        for k in range(9):
            ls = wf[(_SF + _LOG + k) * BLOCK + c]
            ls_rev = wf[(_SF + _LOG + 8 - k) * BLOCK + c]
            wf[(_LS2 + k) * BLOCK + c] = ls if positive else ls_rev
    # the first source breakpoint at or above each fused one. Breakpoints repeat where bins are
    # empty; among equal ones the first has the largest u (the others have u = 0), hence
    # 255 - u in the keys: the smallest key is the first breakpoint
    for k in range(9):
        for c in range(BLOCK):
            nf = wi[(_NF + k) * BLOCK + c]
            best = _BIG
            count = 0
            for j in range(9):
                at_or_above = wi[(_NS + j) * BLOCK + c] >= nf
                best = min(best, wi[(_KS + j) * BLOCK + c] if at_or_above else _BIG)
                count += at_or_above
            wi[(_NXS + k) * BLOCK + c] = best
            wi[(_CNS + k) * BLOCK + c] = count
    # the first fused breakpoint above each source one (ties: fused first), or a padding key
    # (the total, u = 0) where there is none. The last source breakpoint (the total) ties with
    # the last fused one, so its cell is always empty and skipped
    for j in range(8):
        for c in range(BLOCK):
            ns = wi[(_NS + j) * BLOCK + c]
            best = wi[(_NF + 8) * BLOCK + c] * 256 + 255
            count = 0
            for k in range(9):
                above = wi[(_NF + k) * BLOCK + c] > ns
                best = min(best, wi[(_KF + k) * BLOCK + c] if above else _BIG)
                count += above
            wi[(_NXF + j) * BLOCK + c] = best
            wi[(_CNF + j) * BLOCK + c] = count
    for c in range(BLOCK):
        acc[_SUMW * BLOCK + c] = 0.0
        acc[_SUMQ * BLOCK + c] = 0.0
        acc[_QLQ * BLOCK + c] = 0.0
    # staircase cells: every breakpoint ends one, which starts at the larger of the two
    # breakpoints before its end (its own predecessor: numerator - u * other total; the other
    # CDF's: the found key's numerator - its u * own total). q log2 q = q log2 u_own +
    # u_own * (u_other log2 u_other). Float arithmetic: exact here, and cheaper than int64
    for k in range(9):
        for c in range(BLOCK):
            ts = float(wi[(_SI + _TOT) * BLOCK + c])
            tf = float(wi[(_FI + _TOT) * BLOCK + c])
            key = wi[(_NXS + k) * BLOCK + c]
            nf = float(wi[(_NF + k) * BLOCK + c])
            uf = float(wi[(_FI + _U + k) * BLOCK + c])
            uo_int = 255 - (key & 255)
            uo = float(uo_int)
            ov = nf - max(nf - uf * ts, float(key >> 8) - uo * tf)
            filled = ov > 0.0
            q = uf * uo if filled else 0.0
            wf[(_OV + k) * BLOCK + c] = ov
            wf[(_Q + k) * BLOCK + c] = q
            acc[_SUMW * BLOCK + c] += ov * float((9 - k) * wi[(_CNS + k) * BLOCK + c])
            acc[_SUMQ * BLOCK + c] += q
            ulogu = _NLOGN[uo_int if filled else 0]
            acc[_QLQ * BLOCK + c] += q * wf[(_FF + _LOG + k) * BLOCK + c] + uf * ulogu
    for j in range(8):
        for c in range(BLOCK):
            ts = float(wi[(_SI + _TOT) * BLOCK + c])
            tf = float(wi[(_FI + _TOT) * BLOCK + c])
            key = wi[(_NXF + j) * BLOCK + c]
            ns = float(wi[(_NS + j) * BLOCK + c])
            us = float(wi[(_U2 + j) * BLOCK + c])
            uo_int = 255 - (key & 255)
            uo = float(uo_int)
            ov = ns - max(ns - us * tf, float(key >> 8) - uo * ts)
            filled = ov > 0.0  # empty when a fused breakpoint ties with this one
            q = us * uo if filled else 0.0
            wf[(_OV + 9 + j) * BLOCK + c] = ov
            wf[(_Q + 9 + j) * BLOCK + c] = q
            acc[_SUMW * BLOCK + c] += ov * float((9 - j) * wi[(_CNF + j) * BLOCK + c])
            acc[_SUMQ * BLOCK + c] += q
            ulogu = _NLOGN[uo_int if filled else 0]
            acc[_QLQ * BLOCK + c] += q * wf[(_LS2 + j) * BLOCK + c] + us * ulogu
    # theta = c sdS sdF / sum(bound - product of CDFs) = cov sqrt(vS vF / var) / den, with
    # integers cov, vS, vF, var (see _VAR, _COV) and den (the denominator times tot_s tot_f)
    for c in range(BLOCK):
        ts = wi[(_SI + _TOT) * BLOCK + c]
        tf = wi[(_FI + _TOT) * BLOCK + c]
        cov = wi[_COV * BLOCK + c]
        cdf_products = float(wi[(_SI + _CS) * BLOCK + c]) * float(wi[(_FI + _CS) * BLOCK + c])
        sum_min = acc[_SUMW * BLOCK + c]
        if cov >= 0:
            den = sum_min - cdf_products
        else:  # sum of max(cdfF + cdfS - 1, 0) = 10 sum(cdfF) - sum of the reversed minima
            den = 10.0 * float(wi[(_FI + _CS) * BLOCK + c]) * float(ts) - sum_min - cdf_products
        if den == 0.0:  # the torch path's denominator of 1
            den = float(ts) * float(tf)
        var = float(9 * wi[(_SI + _SQ) * BLOCK + c] - ts * ts) * float(
            9 * wi[(_FI + _SQ) * BLOCK + c] - tf * tf
        )
        spreads = wf[(_SF + _VAR) * BLOCK + c] * wf[(_FF + _VAR) * BLOCK + c]
        acc[_THETA * BLOCK + c] = cov * math.sqrt(spreads / max(var, 1.0)) / den
        acc[_XLX * BLOCK + c] = 0.0
    for k in range(_CELLS):
        for c in range(BLOCK):
            theta = acc[_THETA * BLOCK + c]
            m = theta * wf[(_OV + k) * BLOCK + c] + (1.0 - theta) * wf[(_Q + k) * BLOCK + c]
            acc[_XLX * BLOCK + c] += m * _log2_abs(m)
    # joint entropy = the product part in closed form + the cells' corrections (as in fmi.py)
    for c in range(BLOCK):
        ts = wi[(_SI + _TOT) * BLOCK + c]
        tf = wi[(_FI + _TOT) * BLOCK + c]
        theta = acc[_THETA * BLOCK + c]
        rest = 1.0 - theta
        both = wf[(_SF + _ENT) * BLOCK + c] + wf[(_FF + _ENT) * BLOCK + c]
        log_unit = -(_LOG2[ts] + _LOG2[tf])
        rest_log = _log2_abs(max(abs(rest), 1e-300))
        cells = (
            acc[_XLX * BLOCK + c]
            - rest * acc[_QLQ * BLOCK + c]
            - rest * rest_log * acc[_SUMQ * BLOCK + c]
        )
        joint = -rest * rest_log + rest * both - theta * log_unit - cells / (float(ts) * float(tf))
        # two single-valued windows (both entropies 0) count as a perfect match
        nfmi = 2.0 * (both - joint) / both if both > 0.0 else 1.0
        acc[_RES * BLOCK + c] += 0.5 * nfmi


@_jit(fastmath=_FASTMATH, error_model="numpy")
def _row(a, b, f, out, i, r, wi, wf, acc):
    """Output row r of image i: windows on rows r..r+2."""
    ow = f.shape[2] - 2
    for start in range(0, ow, BLOCK):
        c0 = min(start, ow - BLOCK)
        _marginals(f[i, r, c0:], f[i, r + 1, c0:], f[i, r + 2, c0:], wi, wf, _FI, _FF)
        for c in range(BLOCK):
            acc[_RES * BLOCK + c] = 0.0
        _marginals(a[i, r, c0:], a[i, r + 1, c0:], a[i, r + 2, c0:], wi, wf, _SI, _SF)
        _pair(wi, wf, acc)
        _marginals(b[i, r, c0:], b[i, r + 1, c0:], b[i, r + 2, c0:], wi, wf, _SI, _SF)
        _pair(wi, wf, acc)
        row = out[i, r, c0:]
        for c in range(BLOCK):
            row[c] = acc[_RES * BLOCK + c]


# the parallel loop only calls _row: compiled as a parfor, an inlined body would not get
# error_model="numpy", and division checks would stop vectorisation
@_jit(parallel=True)
def fmi_kernel(a, b, f, out):
    """(FMI_AF + FMI_BF) / 2 of every 3x3 window. a, b, f: B x H x W uint8 with W >= BLOCK + 2;
    out: B x (H-2) x (W-2) float32."""
    oh = f.shape[1] - 2
    for task in prange(f.shape[0] * oh):
        wi = np.zeros(_I_ROWS * BLOCK, np.int32)
        wf = np.zeros(_F_ROWS * BLOCK, np.float64)
        acc = np.zeros(_A_ROWS * BLOCK, np.float64)
        _row(a, b, f, out, task // oh, task % oh, wi, wf, acc)


def _as_uint8(x: torch.Tensor) -> np.ndarray:
    """B x 1 x H x W integer grey levels (any dtype) -> B x H x W uint8, padded on the right
    (edge values) to at least BLOCK + 2 columns."""
    x = x[:, 0]
    if x.is_floating_point():
        x = x.round()
    levels = x.clamp(0, 255).to(torch.uint8).contiguous().numpy()
    short = BLOCK + 2 - levels.shape[-1]
    if short > 0:
        levels = np.pad(levels, ((0, 0), (0, 0), (0, short)), mode="edge")
    return levels


def fmi_maps_cpu(a: torch.Tensor, b: torch.Tensor, f: torch.Tensor) -> torch.Tensor:
    """Per-window (FMI_AF + FMI_BF) / 2 of B x 1 x H x W grey levels (integers 0..255, CPU)
    -> B x (H-2) x (W-2) float32, as `metrics.fmi.fmi_maps`.

    Uses as many threads as torch does (at most numba's NUMBA_NUM_THREADS).
    """
    import numba

    bsz, _, h, w = f.shape
    arrays = [_as_uint8(x) for x in (a, b, f)]
    out = np.empty((bsz, h - 2, arrays[2].shape[-1] - 2), dtype=np.float32)
    numba.set_num_threads(max(1, min(torch.get_num_threads(), numba.config.NUMBA_NUM_THREADS)))
    fmi_kernel(*arrays, out)
    return torch.from_numpy(np.ascontiguousarray(out[:, :, : w - 2]))
