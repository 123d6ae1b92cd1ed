"""Training-loss SSIM: the project's function against torchmetrics' (values and CPU speed).

Both losses (DenseFuse, CoCoNet) use SSIM with an 11 x 11 Gaussian window (sigma 1.5),
K1 = 0.01, K2 = 0.03, averaged over the positions where the window fits. This script compares
`fusion.losses.ssim` (both trainers' settings) with
`torchmetrics.functional.structural_similarity_index_measure` on
64 x 64 patches (batch 30, the training patch size) for the value (largest absolute
difference) and the time of a forward + backward pass on the CPU, and prints a table.

    python benchmarks/bench_loss_ssim.py [--repeats 30] [--threads 1]
"""

from __future__ import annotations

import argparse
import time

import torch
from torchmetrics.functional.image import structural_similarity_index_measure as tm_ssim

from fusion.losses import COCONET, DENSEFUSE, ssim
from mmif.runtime import cpu_description


def _torchmetrics(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    b, c = x.shape[:2]
    out = tm_ssim(
        x.reshape(b * c, 1, *x.shape[2:]),
        y.reshape(b * c, 1, *y.shape[2:]),
        gaussian_kernel=True,
        sigma=1.5,
        kernel_size=11,
        data_range=1.0,
        k1=0.01,
        k2=0.03,
        reduction="none",
    )
    return out.view(b, c)


def _time(fn, x: torch.Tensor, y: torch.Tensor, repeats: int) -> tuple[float, float]:
    """(wall, CPU) milliseconds per forward + backward call."""
    for _ in range(3):
        fn(x, y).sum().backward()
    wall, cpu = time.perf_counter(), time.process_time()
    for _ in range(repeats):
        x.grad = None
        fn(x, y).sum().backward()
    return (
        (time.perf_counter() - wall) / repeats * 1e3,
        (time.process_time() - cpu) / repeats * 1e3,
    )


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repeats", type=int, default=30)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--batch", type=int, default=30)
    p.add_argument("--size", type=int, default=64)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    g = torch.Generator().manual_seed(0)
    y = torch.rand(args.batch, 2, args.size, args.size, generator=g)
    x = (y + 0.1 * torch.randn(y.shape, generator=g)).clamp(0, 1).requires_grad_(True)

    def coconet(a, b):
        return ssim(a, b, **COCONET)

    def densefuse(a, b):
        return ssim(a, b, **DENSEFUSE)

    with torch.no_grad():
        diff = float((coconet(x, y) - _torchmetrics(x, y)).abs().max())
        diff_dense = float((coconet(x, y) - densefuse(x, y)).abs().max())
    t_ours = _time(coconet, x, y, args.repeats)
    t_dense = _time(densefuse, x, y, args.repeats)
    t_theirs = _time(_torchmetrics, x, y, args.repeats)
    print(f"CPU: {cpu_description()}, torch threads {args.threads}")
    print(f"input: {args.batch} x 2 x {args.size} x {args.size} float32, forward + backward")
    print("| implementation | wall ms per call | CPU ms per call | max abs difference |")
    print("| --- | --- | --- | --- |")
    print(f"| fusion.losses.ssim, COCONET | {t_ours[0]:.1f} | {t_ours[1]:.1f} | 0 |")
    print(
        f"| fusion.losses.ssim, DENSEFUSE | {t_dense[0]:.1f} | {t_dense[1]:.1f} | {diff_dense:.2e} |"
    )
    print(f"| torchmetrics {_tm_version()} | {t_theirs[0]:.1f} | {t_theirs[1]:.1f} | {diff:.2e} |")


def _tm_version() -> str:
    import torchmetrics

    return torchmetrics.__version__


if __name__ == "__main__":
    main()
