"""Two folders of equally named images: TNO, RoadScene, or any such pair (`folders`).

Fusion-only datasets: no task labels, so only the fusion metrics apply. The infrared and
visible folders are `dataset.ir_dir` / `dataset.vis_dir` (relative to root) when set, otherwise
the first match, in this order and ignoring case, of:

- infrared: ir, infrared, cropinfrared, inf, lwir, thermal
- visible:  vis, vi, visible, crop_HR_visible, crop_LR_visible, rgb

(TNO: `ir/` + `vis/` or `IR/` + `VIS/`; RoadScene: `cropinfrared/` + `crop_HR_visible/`). When
root holds `train/`, `val/` or `test/` with such folders inside, those splits are kept.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from mmif.errors import DatasetError
from preparation.adapters.base import Plan, find_dir, pair_records, require_dir, split_dirs
from preparation.validate import Report

if TYPE_CHECKING:
    from preparation.prepare import DatasetConfig

IR_NAMES = ("ir", "infrared", "cropinfrared", "inf", "lwir", "thermal")
VIS_NAMES = ("vis", "vi", "visible", "crop_HR_visible", "crop_LR_visible", "rgb")


def find_pair_dirs(
    d: Path, cfg: DatasetConfig, ir_names=IR_NAMES, vis_names=VIS_NAMES
) -> tuple[Path, Path] | None:
    """(infrared folder, visible folder) under d, from the config or the usual names."""
    if cfg.ir_dir or cfg.vis_dir:
        if not (cfg.ir_dir and cfg.vis_dir):
            raise DatasetError(
                "dataset.ir_dir and dataset.vis_dir: set both folder names, or neither"
            )
        ir, vis = d / cfg.ir_dir, d / cfg.vis_dir
        return (ir, vis) if ir.is_dir() and vis.is_dir() else None
    ir, vis = find_dir(d, ir_names), find_dir(d, vis_names)
    return (ir, vis) if ir is not None and vis is not None else None


def discover(root: Path, cfg: DatasetConfig, report: Report) -> Plan:
    require_dir(root, f"{cfg.name} folder")
    found = find_pair_dirs(root, cfg)
    if found is not None:
        parts: dict[str | None, tuple[Path, Path]] = {None: found}
    else:
        parts = {}
        for split, d in split_dirs(root).items():
            sub = find_pair_dirs(d, cfg)
            if sub is not None:
                parts[split] = sub
    if not parts:
        wanted = (
            f"{cfg.ir_dir}/ and {cfg.vis_dir}/"
            if cfg.ir_dir
            else "an infrared folder (ir/, IR/, cropinfrared/, ...) and a visible one (vis/, VIS/, crop_HR_visible/, ...)"
        )
        raise DatasetError(
            f"{root}: expected {wanted}; set dataset.ir_dir and dataset.vis_dir to name them"
        )
    records = []
    for split, (ir_dir, vis_dir) in parts.items():
        records += pair_records(ir_dir, vis_dir, split, report)
    notes = {
        split or "none": {"ir": str(ir.relative_to(root)), "vis": str(vis.relative_to(root))}
        for split, (ir, vis) in parts.items()
    }
    return Plan(adapter="folders", root=root, records=records, notes={"folders": notes})
