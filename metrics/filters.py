"""'Valid' separable filters, box sums and Sobel responses, shared by the metric families.

Separable filters run as banded matrix products: a block of P consecutive outputs along an axis
is a P x L band matrix (the taps, shifted by one position per row) times the L inputs the block
reads. The blocks are one batched matrix product over strided views of the input, so BLAS does
the multiply-adds: on CPU that is several times faster than one pass over memory per tap, and
it is the usual fast path on GPUs. Each output is the same sum of products as the direct
filter, in another order (float rounding only). A pass can keep every `step`-th output, so
filtering and decimating by 2 (VIF's pyramid) computes only what is kept.

Images are stored as H x N x W for filtering (row r of every image, then row r + 1, ...): the
row pass sees H * N rows and the column pass one image N * W wide, one product each for all
images. On CPU, memory traffic costs more than the arithmetic, so `filtered_strips` computes a
filter a band of rows at a time and hands out the result strip by strip: the caller's
per-pixel work on a strip then runs in cache. Large temporaries come from `scratch` buffers.

Box sums and Sobel responses of integer data are sums of shifted slices, exact in float32.
"""

from __future__ import annotations

import functools
import math
import threading
from collections.abc import Callable, Iterator

import torch
import torch.nn.functional as F

HALF_PI = math.pi / 2.0

#: outputs per band block of the row and of the column pass: the band has P + K - 1 columns,
#: so small blocks waste few zero products, and these sizes were the fastest on CPU
ROW_BLOCK = 16
COL_BLOCK = 8
#: rows per batched product of the row pass (larger products ran slower on CPU)
ROW_CHUNK = 512
#: entries of each map of a strip of per-pixel work (see `strip_rows`); on 640 x 480 images
#: with two threads, 2**17 was the fastest (smaller strips stay in L2 but pay more for
#: splitting each operation over the threads, larger ones fall out of L3)
STRIP_ELEMENTS = 1 << 17


_SCRATCH = threading.local()
#: largest scratch buffer kept between calls
SCRATCH_BYTES = 1 << 26


def scratch(
    key: str, shape: tuple[int, ...], dtype: torch.dtype, device: torch.device
) -> torch.Tensor:
    """An uninitialised tensor for temporary use at one place (`key`) of the code.

    On CPU the memory is kept and handed out again at the next use of `key` (per thread), so
    that large temporaries do not fault in (and zero) fresh pages at every call, which costs
    as much as the arithmetic on them. The caller must be done with it before `key` is used
    again, and must not return it. Other devices allocate (their allocators cache already).
    """
    numel = math.prod(shape)
    nbytes = numel * torch.empty((), dtype=dtype).element_size()
    if device.type != "cpu" or nbytes > SCRATCH_BYTES:
        return torch.empty(shape, dtype=dtype, device=device)
    pool = _SCRATCH.__dict__.setdefault("pool", {})
    buf = pool.get((key, dtype))
    if buf is None or buf.numel() < numel:
        with torch.inference_mode(False):  # usable inside and outside inference mode
            buf = torch.empty(numel, dtype=dtype, device=device)
        pool[(key, dtype)] = buf
    return buf[:numel].view(shape)


@functools.lru_cache(maxsize=64)
def _band(
    taps: tuple[float, ...], block: int, step: int, dtype: torch.dtype, device: torch.device
) -> torch.Tensor:
    """block x ((block - 1) * step + K) matrix whose row p holds the taps from column p * step."""
    k = len(taps)
    band = torch.zeros(block, (block - 1) * step + k, dtype=torch.float64)
    kernel = torch.tensor(taps, dtype=torch.float64)
    for p in range(block):
        band[p, p * step : p * step + k] = kernel
    return band.to(dtype=dtype, device=device)


def _out_len(n: int, k: int, step: int) -> int:
    out = (n - k) // step + 1 if n >= k else 0
    if out < 1:
        raise ValueError(f"image side {n} is smaller than the {k}-tap window")
    return out


def filter_rows(
    x: torch.Tensor, taps: tuple[float, ...], step: int = 1, out: torch.Tensor | None = None
) -> torch.Tensor:
    """'valid' correlation of every row of a 2-D R x W tensor (unit column stride) with `taps`,
    keeping outputs 0, step, 2 step, ... -> R x W' (into `out` if given)."""
    rows, w = x.shape
    k = len(taps)
    out_w = _out_len(w, k, step)
    if out is None:
        out = x.new_empty(rows, out_w)
    block = max(2, ROW_BLOCK // step)
    band_t = _band(taps, block, step, x.dtype, x.device).t()  # L x P
    span = band_t.shape[0]
    full = out_w // block
    for top in range(0, rows, ROW_CHUNK):
        part, dest = x[top : top + ROW_CHUNK], out[top : top + ROW_CHUNK]
        n = part.shape[0]
        if full:
            # block b of every row: columns b * P * step ... + L - 1 (overlapping views, no copy)
            blocks = part.as_strided(
                (full, n, span), (block * step, part.stride(0), 1), part.storage_offset()
            )
            dest_blocks = dest.as_strided(
                (full, n, block), (block, dest.stride(0), 1), dest.storage_offset()
            )
            torch.bmm(blocks, band_t.expand(full, span, block), out=dest_blocks)
        rest = out_w - full * block
        if rest:
            start, used = full * block * step, (rest - 1) * step + k
            torch.mm(
                part[:, start : start + used], band_t[:used, :rest], out=dest[:, full * block :]
            )
    return out


def filter_cols(
    x: torch.Tensor, taps: tuple[float, ...], step: int = 1, out: torch.Tensor | None = None
) -> torch.Tensor:
    """'valid' correlation down the columns of a 2-D H x C tensor with contiguous rows, keeping
    every `step`-th output row -> contiguous H' x C (into `out` if given)."""
    h, w = x.shape
    k = len(taps)
    out_h = _out_len(h, k, step)
    block = max(2, COL_BLOCK // step)
    band = _band(taps, block, step, x.dtype, x.device)  # P x L
    span = band.shape[1]
    if out is None:
        out = x.new_empty(out_h, w)
    full = out_h // block
    if full:
        blocks = x.as_strided(
            (full, span, w), (block * step * x.stride(0), x.stride(0), 1), x.storage_offset()
        )
        torch.bmm(
            band.expand(full, block, span), blocks, out=out[: full * block].view(full, block, w)
        )
    rest = out_h - full * block
    if rest:
        start, used = full * block * step, (rest - 1) * step + k
        torch.mm(band[:rest, :used], x[start : start + used], out=out[full * block :])
    return out


def separable_hnw(
    x: torch.Tensor, taps: tuple[float, ...], step: int = 1, dtype: torch.dtype | None = None
) -> torch.Tensor:
    """Separable 'valid' filter of N images stored as H x N x W (row r of every image, then row
    r + 1, ...), keeping every `step`-th output along both axes -> contiguous H' x N x W', in
    `dtype` (default x's).

    In this layout both passes are single batched products over all images: the row pass sees
    H * N rows, the column pass one image N * W' wide. x may be any view (a permuted N x H x W
    stack, say): it is copied (and converted) band by band of rows.
    """
    h, n, w = x.shape
    dtype = dtype or x.dtype
    out_w = _out_len(w, len(taps), step)
    rows = scratch("separable_hnw.rows", (h, n * out_w), dtype, x.device)
    band = -(-ROW_CHUNK // n)
    for top in range(0, h, band):
        part = x[top : top + band]
        if part.dtype != dtype or not part.is_contiguous():
            copy = scratch("separable_hnw.band", tuple(part.shape), dtype, x.device)
            part = copy.copy_(part)
        filter_rows(part.view(-1, w), taps, step, out=rows[top : top + band].view(-1, out_w))
    out = filter_cols(rows, taps, step)
    return out.view(out.shape[0], n, -1)


def strip_rows(row_elements: int, device: torch.device, multiple: int = 1) -> int:
    """Rows per strip of per-pixel work whose maps have `row_elements` entries per row.

    On CPU a strip's maps have about `STRIP_ELEMENTS` entries: enough for torch to split each
    operation over the threads at little cost, few enough for the maps of a strip to stay in
    cache. Other devices take the whole image at once (one kernel per operation).
    """
    if device.type != "cpu":
        return 1 << 30
    rows = -(-STRIP_ELEMENTS // max(row_elements, 1))
    return -(-rows // multiple) * multiple


def filtered_strips(
    images: torch.Tensor,
    build: Callable[[torch.Tensor, torch.Tensor], object],
    channels: int,
    taps: tuple[float, ...],
    pairs: int,
    dtype: torch.dtype | None = None,
) -> Iterator[torch.Tensor]:
    """Separable 'valid' filter of `build(images)`, yielded as strips of output rows.

    images: H x N0 x W (any view); build(rows, out) writes the R x `channels` x W images to
    filter (the images and their products, say) of a band of rows (R x N0 x W) to out, in
    `dtype` (default images'). Strips (S x channels x W' each) are sized by `strip_rows` for
    per-pixel work on `pairs` maps, so that each strip and the caller's work on it stay in
    cache; a strip is overwritten by the next one. The products and the row pass are computed
    band by band of rows (a few strips, enough for an efficient batched product) into a buffer
    that keeps the last K - 1 rows of the previous band, which the next band's first strip
    needs. The buffers are allocated once per call.
    """
    h, _, w = images.shape
    k = len(taps)
    out_h, out_w = _out_len(h, k, 1), _out_len(w, k, 1)
    strip = min(strip_rows(pairs * out_w, images.device, COL_BLOCK), out_h)
    band = max(strip, -(-ROW_CHUNK // channels), k - 1)
    band = min(-(-band // strip) * strip, out_h)  # output rows per band
    dtype = dtype or images.dtype
    device = images.device
    rows = scratch("filtered_strips.rows", (band + k - 1, channels * out_w), dtype, device)
    built = scratch("filtered_strips.built", (band + k - 1, channels, w), dtype, device)
    strips = scratch("filtered_strips.strips", (strip, channels * out_w), dtype, device)
    for first in range(0, out_h, band):
        # rows[i] holds the row pass of input row first + i; the previous band left
        # input rows first .. first + K - 2 at rows[band:]
        kept = 0
        if first:
            kept = k - 1
            rows[:kept] = rows[band:].clone() if band < kept else rows[band:]
        count = min(band, out_h - first)
        new = count + k - 1 - kept
        build(images[first + kept : first + count + k - 1], built[:new])
        filter_rows(built[:new].view(-1, w), taps, out=rows[kept : kept + new].view(-1, out_w))
        for top in range(0, count, strip):
            s = min(strip, count - top)
            out = filter_cols(rows[top : top + s + k - 1], taps, out=strips[:s])
            yield out.view(s, channels, out_w)


def box_sum_axis(x: torch.Tensor, size: int, dim: int) -> torch.Tensor:
    """Sums of `size` consecutive entries along `dim`, 'valid', by doubling: sums of 2, 4, ...
    entries (one pass each), then the largest of them plus the smaller ones that make up `size`
    (in place). Exact for integer data whose window sums stay below 2**24 in float32 (2**53 in
    float64, 2**31 in int32). The result lives in a `scratch` buffer (when size > 1)."""
    n = x.shape[dim]
    if n < size:
        raise ValueError(f"image side {n} is smaller than the {size}-wide window")
    out_n = n - size + 1
    parts = {1: x}  # width -> sums of `width` consecutive entries
    width = 1
    while 2 * width <= size:
        part = parts[width]
        m = part.shape[dim] - width
        shape = list(part.shape)
        shape[dim] = m
        key = f"box.{dim % x.ndim}.{2 * width}"
        parts[2 * width] = torch.add(
            part.narrow(dim, 0, m),
            part.narrow(dim, width, m),
            out=scratch(key, tuple(shape), x.dtype, x.device),
        )
        width *= 2
    out = parts[width].narrow(dim, 0, out_n)
    offset, rest = width, size - width
    while rest:
        step = 1 << (rest.bit_length() - 1)
        out += parts[step].narrow(dim, offset, out_n)  # out is a fresh sum when rest > 0
        offset, rest = offset + step, rest - step
    return out


def _box_sum_running(x: torch.Tensor, size: int) -> torch.Tensor:
    """Sums of `size` consecutive entries along the last dim from running sums (one pass for
    the running sums, one for the differences); the running sums must not overflow."""
    run = torch.cumsum(x, -1, dtype=x.dtype, out=scratch("box.running", x.shape, x.dtype, x.device))
    out = scratch("box.rows", (*x.shape[:-1], x.shape[-1] - size + 1), x.dtype, x.device)
    out[..., 0] = run[..., size - 1]
    torch.sub(run[..., size:], run[..., :-size], out=out[..., 1:])
    return out


def box_sum_valid(x: torch.Tensor, size: int, bound: int | None = None) -> torch.Tensor:
    """Sum over every size x size window, 'valid'. Exact for integer data whose window sums stay
    below 2**24 in float32 (2**53 in float64, 2**31 in int32).

    For int32 data whose entries are at most `bound` in magnitude, the rows are summed from
    running sums when those cannot overflow (W * bound < 2**31), which is faster than doubling.
    The result lives in a `scratch` buffer: use it before the next call.
    """
    w = x.shape[-1]
    if w < size:
        raise ValueError(f"image side {w} is smaller than the {size}-wide window")
    if x.dtype == torch.int32 and bound is not None and w * bound < 2**31:
        rows = _box_sum_running(x, size)
    else:
        rows = box_sum_axis(x, size, -1)
    return box_sum_axis(rows, size, -2)


def _sobel_valid(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Sobel responses of the pixels with all 8 neighbours inside x: ... x (H-2) x (W-2).

    sx = left column minus right column smoothed by [1, 2, 1] down the rows (true convolution
    with [[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]], as scipy.signal.convolve2d), sy = bottom row minus
    top row smoothed along the rows.
    """
    dx = x[..., :, :-2] - x[..., :, 2:]
    sx = torch.add(dx[..., :-2, :], dx[..., 1:-1, :], alpha=2.0).add_(dx[..., 2:, :])
    dy = x[..., 2:, :] - x[..., :-2, :]
    sy = torch.add(dy[..., :-2], dy[..., 1:-1], alpha=2.0).add_(dy[..., 2:])
    return sx, sy


def sobel_interior(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Sobel (sx, sy) of ... x H x W away from the border, ... x (H-2) x (W-2) each.

    These responses do not depend on how the border is padded; `sobel_frame` gives the rest.
    """
    return _sobel_valid(x)


def sobel_frame(x: torch.Tensor, padding: str) -> tuple[torch.Tensor, torch.Tensor]:
    """Sobel (sx, sy) of the 2 W + 2 (H - 2) border pixels of N x 1 x H x W -> N x that each.

    `padding` is "zeros" ('same' convolution with zero padding) or "reflect" (mirror without
    repeating the border pixel). Order: top row, bottom row, left column, right column (the
    columns without the corners).
    """
    if padding == "zeros":
        mode = "constant"
    elif padding == "reflect":
        mode = "reflect"
    else:
        raise ValueError(f"unknown padding '{padding}'")
    slabs = [
        F.pad(x[..., :2, :], (1, 1, 1, 0), mode=mode),  # rows -1, 0, 1
        F.pad(x[..., -2:, :], (1, 1, 0, 1), mode=mode),  # rows H-2, H-1, H
        F.pad(x[..., :, :2], (1, 0, 0, 0), mode=mode),  # columns -1, 0, 1
        F.pad(x[..., :, -2:], (0, 1, 0, 0), mode=mode),  # columns W-2, W-1, W
    ]
    parts = [_sobel_valid(s) for s in slabs]
    sx = torch.cat([p[0].flatten(1) for p in parts], dim=1)
    sy = torch.cat([p[1].flatten(1) for p in parts], dim=1)
    return sx, sy


def sobel_orientation(sx: torch.Tensor, sy: torch.Tensor) -> torch.Tensor:
    """arctan(sy / sx) in [-pi/2, pi/2], pi/2 where sx == 0 (the MATLAB/numpy quirk).

    sy / sx is +-inf or nan exactly where sx == 0 (Sobel responses of grey levels are integers,
    so a nonzero sx is at least 1); all three become +inf, whose arctan is pi/2.
    """
    ratio = torch.div(sy, sx)
    return ratio.nan_to_num_(nan=math.inf, posinf=math.inf, neginf=math.inf).atan_()
