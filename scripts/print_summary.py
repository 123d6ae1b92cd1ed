"""Print the answers of the last `dvc repro`: per task the headline scores of every method with
their intervals (rounded by the report's precision rule), the best method, whether a fusion
beats both sources, and the known effects.

python scripts/print_summary.py [results/report]
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pandas as pd

from report.precision import bounds_of, interval_text

HEADLINE = {"detect": ["mAP50", "mAP50_95"], "segment": ["mIoU", "pixel_accuracy"]}


def task_table(path: Path, scores: list[str]) -> pd.DataFrame:
    """method x score text "mean [low, high]" from a <task>_scores.csv of the report."""
    df = pd.read_csv(path)
    df = df[df["score"].isin(scores)]
    df = df.assign(
        text=[
            interval_text(r["mean"], r["ci_low"], r["ci_high"], bounds_of(r["score"]))
            for _, r in df.iterrows()
        ]
    )
    wide = df.pivot(index="method", columns="score", values="text")
    order = list(dict.fromkeys(df["method"]))
    return wide.reindex(index=order, columns=[s for s in scores if s in wide.columns])


def main(argv: list[str]) -> int:
    report = Path(argv[0] if argv else "results/report")
    tables = report / "tables"
    found = [t for t in HEADLINE if (tables / f"{t}_scores.csv").is_file()]
    if not found:
        print(f"{tables}: no <task>_scores.csv (run `dvc repro` first)", file=sys.stderr)
        return 1
    summary = report / "summary.json"
    doc = json.loads(summary.read_text()) if summary.is_file() else {}
    for task in found:
        protocol = (doc.get("protocols") or {}).get(task, "n/a")
        print(f"{task} (protocol {protocol}): mean over seeds [95% t-interval over seeds]")
        table = task_table(tables / f"{task}_scores.csv", HEADLINE[task])
        print(table.to_string(index_names=False))
        f = (doc.get("findings") or {}).get(task) or {}
        if f:
            same = ", ".join(m for m in f.get("indistinguishable_from_best", [])) or "none"
            winners = ", ".join(f.get("fusion_beats_both_sources", [])) or "none"
            print(f"  best: {f.get('best')}; indistinguishable from it: {same}")
            print(f"  fusion significantly better than both sources: {winners}")
        for effect, row in (doc.get("sanity") or {}).items():
            if effect.startswith(f"{task}:"):
                print(f"  known effect {effect[len(task) + 2 :]}: "
                      f"{'detected' if row.get('detected') else 'NOT detected'}")  # fmt: skip
        print()
    print(f"Findings first: {report / 'report.html'} (and report.md); card: {report / 'card.png'}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
