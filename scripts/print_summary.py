"""Print the headline task scores of the last `dvc repro` (mean over seeds) as a small table.

python scripts/print_summary.py [results/report/plot_data/task_scores.csv]
"""

from __future__ import annotations

import sys
from pathlib import Path

import pandas as pd

HEADLINE = ["detect_mAP50", "detect_mAP50_95", "segment_mIoU", "segment_pixel_accuracy"]


def main(argv: list[str]) -> int:
    path = Path(argv[0] if argv else "results/report/plot_data/task_scores.csv")
    if not path.is_file():
        print(f"{path}: not found (run `dvc repro` first)", file=sys.stderr)
        return 1
    table = pd.read_csv(path)
    shown = ["method"] + [c for c in HEADLINE if c in table.columns]
    print("Task scores, mean over seeds (full tables: results/report/report.md):")
    print(table[shown].round(4).to_string(index=False))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
