"""Prepare a public benchmark from its upstream layout into the canonical prepared layout.

    discover (adapter: names only) -> select / split -> read + check each pair -> write_prepared

`prepare_dataset` dispatches by dataset name to an adapter in `preparation.adapters`, reads and
checks every pair the same way for every dataset (`preparation.validate`), converts VOC boxes to
YOLO, derives salient-target masks, splits, and writes atomically with
`preparation.writer.write_prepared`. With `check=True` it reads everything, writes nothing and
returns the list of problems.

Splits: upstream splits are kept. When the release has none (M3FD, TNO, RoadScene, medical)
a seeded split is made with `val_fraction` and `test_fraction` (shares of all pairs); when it
has train but no val, `val_fraction` of train becomes val. `resplit: true` pools every pair and
splits afresh (e.g. the 200 test-only MSRS pairs). Stems with an MSRS-style D/N suffix are
split per day/night group.

Salient masks (datasets with labels): pixels of segmentation classes named in
`salient_classes` when masks exist, else the boxes of those classes: by default only the warm
part of each box in the infrared image (`salient_boxes: refined`, the whole box where the target
does not stand out from its surroundings; see `preparation.annotations.warm_part_of_box`), or the
whole boxes (`salient_boxes: whole`).
"""

from __future__ import annotations

import dataclasses
import logging
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from mmif.config import from_dict
from mmif.errors import ConfigError, DatasetError
from mmif.io import check_output_dir
from mmif.labels import salient_from_boxes
from mmif.layout import Manifest, condition_of
from mmif.logging_utils import progress_bar
from preparation.adapters import ADAPTERS, PairRecord, Plan
from preparation.annotations import (
    read_voc,
    read_yolo,
    salient_from_mask,
    salient_ids,
)
from preparation.splits import assign_splits, evenly_spaced
from preparation.validate import (
    Problem,
    Report,
    check_boxes,
    check_mask_size,
    check_pair_size,
    read_mask,
    read_source_image,
    size_of,
)
from preparation.writer import Sample, write_prepared

if TYPE_CHECKING:
    from preparation.synthetic import SyntheticConfig

log = logging.getLogger(__name__)

SYNTHETIC = "synthetic"
DATASETS = (SYNTHETIC, *ADAPTERS)
# warm targets, the "salient" objects of infrared (names across the supported class lists)
DEFAULT_SALIENT = ["person", "people", "car", "bus", "truck", "motorcycle"]


@dataclass
class DatasetConfig:
    """Which dataset to prepare and how (`dataset:` in params.yaml).

    name: synthetic | msrs | m3fd | llvip | fmb | tno | roadscene | folders | medical.
    root: the dataset folder as released upstream. det_labels: folder of YOLO `<stem>.txt`
    boxes released separately (MSRS).
    split_seed, val_fraction, test_fraction, resplit: see the module docstring; fractions in [0, 1].
    resize_mismatched: resize a visible image (and mask) whose size differs from its infrared
    partner to the infrared size instead of stopping with an error.
    det_classes, seg_classes: class names in id order, or the path of a text file with one name
    per line; null keeps the adapter's default (required where DATASETS.md marks it unverified).
    salient_classes: class names whose pixels or boxes make the salient-target mask.
    salient_boxes: from boxes, the mask is the warm part of each box in the infrared image
    ("refined", whole box as the fallback) or the whole box ("whole").
    unknown_classes: a VOC object of a class not in det_classes is an "error" or is "ignore"d.
    ir_dir, vis_dir: folder names of the two sources (folders, tno, roadscene, medical).
    max_pairs_per_split: keep only this many pairs of each upstream split, evenly spaced over the
    sorted stems (day and night alike): quick runs and tests. null keeps all.
    """

    name: str = SYNTHETIC
    root: str | None = None
    det_labels: str | None = None
    split_seed: int = 0
    val_fraction: float = 0.1
    test_fraction: float = 0.2
    resplit: bool = False
    resize_mismatched: bool = False
    det_classes: list[str] | str | None = None
    seg_classes: list[str] | str | None = None
    salient_classes: list[str] = field(default_factory=lambda: list(DEFAULT_SALIENT))
    salient_boxes: Literal["refined", "whole"] = "refined"
    unknown_classes: Literal["error", "ignore"] = "error"
    ir_dir: str | None = None
    vis_dir: str | None = None
    max_pairs_per_split: int | None = None

    def validate(self) -> None:
        if self.name not in DATASETS:
            raise ConfigError(
                f"dataset.name: unknown dataset '{self.name}'; choose one of {', '.join(DATASETS)}"
            )
        for key in ("val_fraction", "test_fraction"):
            if not 0.0 <= getattr(self, key) <= 1.0:
                raise ConfigError(f"dataset.{key}: must be in [0, 1], got {getattr(self, key)}")
        if self.val_fraction + self.test_fraction > 1.0:
            raise ConfigError("dataset.val_fraction + dataset.test_fraction: must not exceed 1")
        if self.max_pairs_per_split is not None and self.max_pairs_per_split < 1:
            raise ConfigError("dataset.max_pairs_per_split: at least 1 (or null for all pairs)")


def prepare_dataset(
    dataset: DatasetConfig | str,
    out_dir: str | Path | None = None,
    *,
    root: str | Path | None = None,
    det_labels: str | Path | None = None,
    check: bool = False,
    progress: bool = True,
    synthetic: SyntheticConfig | None = None,
    overwrite: bool = False,
    **options: Any,
) -> Manifest | list[Problem]:
    """Prepare `dataset` into `out_dir`; returns the written Manifest, or the problems if `check`.

    dataset: a DatasetConfig, or a dataset name whose other settings come from `options`
    (DatasetConfig field names, e.g. `val_fraction=0.2, det_classes=[...]`). `root` and
    `det_labels` override the config's. Raises DatasetError (a ValueError) naming the file and
    the fix on the first problem unless `check`; the output folder is then left untouched.
    `synthetic` configures the generator when the name is "synthetic". The output may not be,
    contain or lie inside the dataset's folders; a non-empty folder mmif did not write is only
    replaced with `overwrite` (`mmif.io.atomic_dir`).
    """
    cfg = _resolve_config(dataset, root, det_labels, options)
    if cfg.name == SYNTHETIC:
        return _prepare_synthetic(synthetic, out_dir, check, overwrite)
    if out_dir is None and not check:
        raise ValueError("prepare_dataset: give out_dir (or check=True)")
    if not check:  # before any work: refuse an output that would replace the dataset itself
        check_output_dir(out_dir, (cfg.root, cfg.det_labels), overwrite)
    report = Report(collect=check)
    try:
        plan = _discover(cfg, report)
        records = _select_and_split(plan.records, cfg)
    except DatasetError as exc:
        if not check:
            raise
        report.problems.append(Problem("error", "layout", str(cfg.root), str(exc)))
        return report.problems
    if not records:
        report.error(
            "empty",
            plan.root,
            f"no image pairs found for dataset '{cfg.name}'; check the folder layout",
        )
        return report.problems
    samples = _load_samples(plan, records, cfg, report)
    if check:
        n_ok = sum(
            1
            for _ in progress_bar(
                samples, total=len(records), desc="checking", unit="pair", disable=not progress
            )
        )
        log.info(
            "checked %d pairs: %d readable, %d problem(s)", len(records), n_ok, len(report.problems)
        )
        return report.problems
    manifest = Manifest(
        name=cfg.name,
        provenance=f"preparation.adapters.{plan.adapter} on {plan.root.resolve()}",
        splits={},
        det_classes=plan.det_classes,
        seg_classes=plan.seg_classes,
        salient_source=_salient_source(plan, cfg),
        extra={
            "adapter": plan.adapter,
            "root": str(plan.root.resolve()),
            "det_labels": str(Path(cfg.det_labels).resolve()) if cfg.det_labels else None,
            "options": dataclasses.asdict(cfg),
            "layout": plan.notes,
            "split_rule": _split_rule(plan.records, cfg),
            "day_night": _day_night_counts(records),
            # filled while the samples are read; the writer copies `extra` after the last one
            "warnings": report.warning_kinds,
        },
    )
    written = write_prepared(
        out_dir,
        samples,
        manifest,
        total=len(records),
        progress=progress,
        inputs=(cfg.root, cfg.det_labels),
        overwrite=overwrite,
    )
    report.log_summary()
    return written


def _resolve_config(dataset, root, det_labels, options) -> DatasetConfig:
    if isinstance(dataset, DatasetConfig):
        cfg = dataclasses.replace(dataset, **options) if options else dataset
    else:
        cfg = from_dict(DatasetConfig, {"name": dataset, **options}, "dataset")
    if root is not None:
        cfg = dataclasses.replace(cfg, root=str(root))
    if det_labels is not None:
        cfg = dataclasses.replace(cfg, det_labels=str(det_labels))
    cfg.validate()
    return cfg


def _prepare_synthetic(synthetic, out_dir, check, overwrite) -> Manifest | list[Problem]:
    # Hook for the embedded generator (owned by preparation.synthetic).
    if check:
        return []
    from preparation.synthetic import SyntheticConfig, write_synthetic

    if out_dir is None:
        raise ValueError("prepare_dataset: give out_dir")
    write_synthetic(synthetic or SyntheticConfig(), Path(out_dir), overwrite=overwrite)
    return Manifest.load(out_dir)


def _discover(cfg: DatasetConfig, report: Report) -> Plan:
    if not cfg.root:
        raise DatasetError(
            f"dataset.root: not set; give the {cfg.name} folder with --root DIR or in params.yaml"
        )
    plan = ADAPTERS[cfg.name](Path(cfg.root), cfg, report)
    log.info("%s: found %d pairs in %s", cfg.name, len(plan.records), cfg.root)
    return plan


def _select_and_split(records: list[PairRecord], cfg: DatasetConfig) -> list[PairRecord]:
    """Records with their final split, sorted by (split, stem)."""
    by_split: dict[str | None, list[PairRecord]] = {}
    for r in records:
        by_split.setdefault(r.split, []).append(r)
    if cfg.max_pairs_per_split is not None:
        for key, recs in by_split.items():
            keep = set(evenly_spaced([r.stem for r in recs], cfg.max_pairs_per_split))
            by_split[key] = [r for r in recs if r.stem in keep]
    records = [r for recs in by_split.values() for r in recs]
    if cfg.resplit or set(by_split) == {None}:
        stems = [r.stem for r in records]
        if len(set(stems)) != len(stems):
            dup = next(s for s, n in Counter(stems).items() if n > 1)
            raise DatasetError(
                f"{cfg.root}: stem '{dup}' occurs in several upstream splits; cannot pool them (set dataset.resplit: false)"
            )
        split_of = assign_splits(stems, cfg.val_fraction, cfg.test_fraction, cfg.split_seed)
        records = [dataclasses.replace(r, split=split_of[r.stem]) for r in records]
    elif None in by_split:
        raise DatasetError(
            f"{cfg.root}: some pairs belong to an upstream split and some do not; fix the layout"
        )
    elif "val" not in by_split and "train" in by_split and cfg.val_fraction > 0:
        split_of = assign_splits(
            [r.stem for r in by_split["train"]], cfg.val_fraction, 0.0, cfg.split_seed
        )
        records = [
            dataclasses.replace(r, split=split_of[r.stem]) if r.split == "train" else r
            for r in records
        ]
    return sorted(records, key=lambda r: (("train", "val", "test").index(r.split), r.stem))


def _split_rule(upstream: list[PairRecord], cfg: DatasetConfig) -> str:
    splits = sorted({r.split for r in upstream if r.split})
    if cfg.resplit or not splits:
        return f"seeded split of all pairs (seed {cfg.split_seed}, val {cfg.val_fraction}, test {cfg.test_fraction})"
    if "val" not in splits and "train" in splits and cfg.val_fraction > 0:
        return f"upstream {'/'.join(splits)}; val = {cfg.val_fraction} of train (seed {cfg.split_seed})"
    return f"upstream {'/'.join(splits)}"


def _day_night_counts(records: list[PairRecord]) -> dict[str, dict[str, int]]:
    out: dict[str, dict[str, int]] = {}
    for r in records:
        condition = condition_of(r.stem)
        if condition:
            out.setdefault(r.split, {"day": 0, "night": 0})[condition] += 1
    return out


def _salient_source(plan: Plan, cfg: DatasetConfig) -> str | None:
    has_masks = any(r.mask for r in plan.records)
    if has_masks and salient_ids(plan.seg_classes, cfg.salient_classes):
        names = [plan.seg_classes[i] for i in salient_ids(plan.seg_classes, cfg.salient_classes)]
        return "segmentation classes: " + ", ".join(names)
    if any(r.labels for r in plan.records) and salient_ids(plan.det_classes, cfg.salient_classes):
        names = [plan.det_classes[i] for i in salient_ids(plan.det_classes, cfg.salient_classes)]
        how = "warm part of the boxes" if cfg.salient_boxes == "refined" else "boxes"
        return f"{how} of classes: " + ", ".join(names)
    return None


def _load_samples(
    plan: Plan, records: list[PairRecord], cfg: DatasetConfig, report: Report
) -> Iterator[Sample]:
    """Read and check each pair; yields the good ones (errors raise unless collecting)."""
    seg_salient = salient_ids(plan.seg_classes, cfg.salient_classes)
    det_salient = salient_ids(plan.det_classes, cfg.salient_classes)
    use_masks_for_salient = bool(seg_salient) and any(r.mask for r in plan.records)
    for rec in records:
        ir = read_source_image(rec.ir, "infrared", report)
        vis = read_source_image(rec.vis, "visible", report)
        if ir is None or vis is None:
            continue
        vis = check_pair_size(ir, vis, rec.ir, rec.vis, cfg.resize_mismatched, report)
        if vis is None:
            continue
        size = size_of(ir)
        mask = None
        if rec.mask is not None:
            mask = read_mask(rec.mask, len(plan.seg_classes), report, plan.seg_palette)
            if mask is None:
                continue
            mask = check_mask_size(mask, ir, rec.mask, cfg.resize_mismatched, report)
            if mask is None:
                continue
        rows = None
        if rec.labels is not None:
            if plan.label_format == "voc":
                rows = read_voc(rec.labels, plan.det_classes, size, report, cfg.unknown_classes)
            else:
                rows = read_yolo(rec.labels, report)
            if rows is None:
                continue
            rows = check_boxes(rows, len(plan.det_classes), size, rec.labels, report)
            if rows is None:
                continue
        salient = None
        if use_masks_for_salient and mask is not None:
            salient = salient_from_mask(mask, seg_salient)
        elif not use_masks_for_salient and det_salient and rows is not None:
            salient = salient_from_boxes(rows, det_salient, size, ir, cfg.salient_boxes)
        yield Sample(
            split=rec.split, stem=rec.stem, ir=ir, vis=vis, labels=rows, mask=mask, salient=salient
        )
