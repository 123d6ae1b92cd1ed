"""The medical study's table: headline metrics and the black-background level, per method.

Reads a finished run (`dvc repro` or `dvc exp run` with the medical profile, README "Medical
image fusion") from a repository folder:

    .venv/bin/python benchmarks/bench_medical.py            # this repository's last run
    .venv/bin/python benchmarks/bench_medical.py --run /path/to/copy --split test

"background" is the mean fused grey level (0..255) where both sources are below 2% of full range,
averaged over the split's images (largest image value in brackets); the issue's limit is 5.
The last line counts the headline metrics on which CoCoNet beats `mean`.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from mmif.io import read_image

HEADLINE = ["EN", "SD", "SF", "MI", "SCD", "VIF", "Qabf", "SSIM"]
BLACK = 0.02 * 255


def background_level(run: Path, method: str, split: str) -> list[float]:
    """Mean fused grey level where both sources are black, per image of the split."""
    levels = []
    for ir_path in sorted((run / "data/prepared" / split / "ir").glob("*.png")):
        ir = read_image(ir_path, "grey").astype(np.float32)
        vis = read_image(run / "data/prepared" / split / "vis" / ir_path.name, "grey")
        fused = read_image(run / "data/fused" / method / split / ir_path.name, "grey")
        black = (ir < BLACK) & (vis.astype(np.float32) < BLACK)
        if black.any():
            levels.append(float(fused.astype(np.float32)[black].mean()))
    return levels


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--run", type=Path, default=Path(__file__).resolve().parents[1])
    p.add_argument("--split", default="test")
    args = p.parse_args()
    scores = {}
    print("| method | " + " | ".join(HEADLINE) + " | background |")
    print("|:--|" + "--:|" * len(HEADLINE) + ":--|")
    for f in sorted((args.run / "results/fusion_metrics").glob("*.json")):
        scores[f.stem] = json.loads(f.read_text())
        bg = background_level(args.run, f.stem, args.split)
        level = f"{np.mean(bg):.1f} (max {np.max(bg):.1f})" if bg else "no black pixels"
        cells = " | ".join(f"{scores[f.stem][k]:.2f}" for k in HEADLINE)
        print(f"| {f.stem} | {cells} | {level} |")
    if {"coconet", "mean"} <= scores.keys():
        wins = [k for k in HEADLINE if scores["coconet"][k] > scores["mean"][k]]
        print(f"coconet beats mean on {len(wins)} of {len(HEADLINE)}: {', '.join(wins)}")


if __name__ == "__main__":
    main()
