"""Print the headline task scores of the last `dvc repro` (mean over seeds) as a small table.

python scripts/print_summary.py [results/report/plot_data/task_scores.csv]
"""

from __future__ import annotations

import json
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
    summary = path.parent.parent / "summary.json"
    if summary.is_file():
        doc = json.loads(summary.read_text())
        for task, protocol in (doc.get("protocols") or {}).items():
            best = (doc.get("best") or {}).get(task, {})
            same = ", ".join(best.get("indistinguishable", [])) or "n/a"
            print(f"{task}: protocol {protocol}; indistinguishable from the best: {same}")
        for effect, row in (doc.get("sanity") or {}).items():
            print(f"known effect {effect}: {'detected' if row.get('detected') else 'NOT detected'}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
