"""One method's task scores over its seeds: the DVC metrics and plots of a detect/segment stage.

`summarise_seeds` reads `<out>/seed_<S>/metrics.json` of every seed and writes
- a JSON with the protocol the scores were made under, each headline score's mean and sample
  std over seeds, the per-class means and every seed's headline scores (what
  `dvc metrics show` / `dvc exp show` list), and
- a CSV of the training curves averaged over seeds per epoch (what `dvc plots` draws).
The report computes its own statistics from the per-seed files; these are for DVC's views.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from mmif.io import write_json, write_text

log = logging.getLogger(__name__)

#: task -> (headline scores, the per-class score inside metrics.json's per_class entries)
SCORES = {
    "detect": (("mAP50", "mAP50_95", "precision", "recall"), "AP50"),
    "segment": (("mIoU", "pixel_accuracy"), "IoU"),
}


def _mean_std(values: Sequence[float]) -> tuple[float, float | None]:
    mean = math.fsum(values) / len(values)
    if len(values) < 2:
        return mean, None
    var = math.fsum((v - mean) ** 2 for v in values) / (len(values) - 1)
    return mean, math.sqrt(var)


def summarise_seeds(
    task: str, method: str, out: Path, seeds: Sequence[int], summary: Path, curves: Path | None
) -> dict[str, Any]:
    """Write the summary JSON (and mean curves CSV); returns the JSON content."""
    headline, per_class_key = SCORES[task]
    runs = {}
    for seed in seeds:
        path = Path(out) / f"seed_{seed}" / "metrics.json"
        runs[seed] = json.loads(path.read_text())
    done = {s: m for s, m in runs.items() if not m.get("skipped")}
    doc: dict[str, Any] = {"method": method, "task": task, "seeds": list(seeds)}
    protocols = sorted({str(m["protocol"]) for m in done.values() if m.get("protocol")})
    if protocols:
        # the protocol the scores were made under (a method with test images only is scored
        # frozen when finetune was asked for: requested_protocol says so)
        doc["protocol"] = "+".join(protocols)
        requested = sorted(
            {str(m["requested_protocol"]) for m in done.values() if m.get("requested_protocol")}
        )
        if requested:
            doc["requested_protocol"] = "+".join(requested)
    if not done:
        reasons = sorted({str(m.get("reason", "skipped")) for m in runs.values()})
        doc.update(skipped=True, reason="; ".join(reasons))
        write_json(summary, doc)
        if curves is not None:
            write_text(curves, "epoch\n")
        return doc
    for key in headline:
        values = [float(m[key]) for m in done.values() if m.get(key) is not None]
        if values:
            mean, std = _mean_std(values)
            doc[key] = mean
            doc[f"{key}_std"] = std
    classes: dict[str, float] = {}
    for name in next(iter(done.values())).get("per_class", {}):
        values = [
            float(m["per_class"][name][per_class_key])
            for m in done.values()
            if m.get("per_class", {}).get(name, {}).get(per_class_key) is not None
        ]
        if values:
            classes[name] = math.fsum(values) / len(values)
    doc[f"per_class_{per_class_key}"] = classes
    doc["per_seed"] = {
        str(s): {k: m.get(k) for k in headline if k in m} for s, m in sorted(done.items())
    }
    write_json(summary, doc)
    if curves is not None:
        _write_mean_curves(out, sorted(done), curves)
    return doc


def _write_mean_curves(out: Path, seeds: Sequence[int], dest: Path) -> None:
    frames = []
    for seed in seeds:
        path = Path(out) / f"seed_{seed}" / "curves.csv"
        if path.exists():
            frame = pd.read_csv(path)
            if "epoch" in frame and len(frame):
                frames.append(frame)
    if not frames:
        write_text(dest, "epoch\n")
        return
    table = pd.concat(frames).groupby("epoch", sort=True).mean(numeric_only=True).reset_index()
    write_text(dest, table.to_csv(index=False, float_format="%.6g"))
