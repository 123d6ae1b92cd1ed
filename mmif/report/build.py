"""`build_report`: every result of a run in one folder of tables, plots, report.md/.html and
summary.json.

    <out>/report.html          self-contained (images embedded, no external resources)
    <out>/report.md            same content, images linked by relative path
    <out>/summary.json         headline numbers for `dvc metrics`
    <out>/tables/*.csv, *.md   numeric tables (CSV) and their display form (Markdown)
    <out>/plots/*.png, *.svg   figures

The folder is written atomically (`mmif.io.atomic_dir`): a failed build leaves the previous
report in place.
"""

from __future__ import annotations

import json
import logging
import math
from pathlib import Path
from typing import Any

import pandas as pd

from mmif.data.layout import Manifest
from mmif.errors import MissingInputError
from mmif.io import atomic_dir, check_output_dir, write_text
from mmif.report import plots
from mmif.report.conditions import detection_by_condition, segmentation_by_condition
from mmif.report.config import ReportConfig
from mmif.report.document import (
    Bullets,
    Document,
    Figure,
    Paragraph,
    Section,
    Table,
    render_markdown,
)
from mmif.report.grid import qualitative_grid
from mmif.report.html import render_html
from mmif.report.loading import TASKS, Results, find_key, load_results
from mmif.report.significance import (
    GAIN_MARKS,
    PER_CLASS_SCORE,
    TESTED_SCORE,
    Significance,
    mark_for,
    significance,
)
from mmif.report.tables import (
    PER_CLASS_KEY,
    conventions,
    correlation_table,
    fusion_metric_names,
    fusion_table,
    headline_scores,
    per_class_table,
    protocol_text,
    task_display,
    task_protocols,
    task_summary,
    write_table,
)

log = logging.getLogger(__name__)

TASK_TITLE = {"detect": "Object detection", "segment": "Semantic segmentation"}
PROTOCOL_MEANING = {
    "frozen": "one task model per seed, trained once on the source images, scores every method's fused test images",
    "finetune": "the shared task model of each seed fine-tuned on each method's fused train images",
    "retrain": "a task model per method and seed, trained from scratch on its fused train images",
}


def _main(protocols: dict[str, str]) -> str:
    """The protocol most methods got."""
    values = list(protocols.values())
    return max(set(values), key=values.count) if values else ""


STAT_METHODS = (
    "Task scores are the mean ± sample standard deviation over the training seeds with a {level:.0%} "
    "confidence interval from Student's t distribution with n - 1 degrees of freedom (no interval with one seed)."
)
BOOTSTRAP_METHOD = (
    "Differences between methods include both things a rerun would change: the training seeds and the test "
    "images. Every run is rescored on {b} bootstrap resamples of the test images (seed {seed}; the same resamples "
    "for every method and seed): detection AP50 with the study's one AP definition (COCO-style 101-point AP at "
    "IoU 0.5 on the saved predictions, at most {max_dets} per image and class: the mAP50 of the tables), "
    "segmentation IoU from the summed per-image confusion counts. The variance of a difference of seed means is "
    "the seed variance (under frozen and finetune the methods of a seed share its task model, so the spread of "
    "the within-seed differences; under retrain each method's own seed spread) plus the bootstrap variance over "
    "test images; the {level:.0%} interval and the two-sided p-value come from Student's t with Welch-Satterthwaite "
    "degrees of freedom (mmif/report/comparison.py; calibrated on simulated studies: "
    "tests/report/test_report_calibration.py). A difference with one seed is not tested. A significant gain "
    "(p < {alpha:g}) is marked {marks}."
)


def build_report(
    results_dir: Path,
    data_root: Path,
    fused_root: Path,
    out_dir: Path,
    cfg: ReportConfig,
    overwrite: bool = False,
) -> None:
    """Read every metric file under `results_dir` and write the comparison report to `out_dir`.

    data_root: prepared dataset (manifest.json, test images for the qualitative grid);
    fused_root: fused images, `<fused_root>/<method>/<split>/<stem>.png` and info.json.
    Missing parts (no detection or segmentation results, no CoCoNet, no manifest) are reported
    as not available. `out_dir` may lie inside `results_dir` (results/report) but not be, hold
    or lie inside anything the report reads; a non-empty folder mmif did not write is replaced
    only with `overwrite`.
    """
    check_output_dir(out_dir, report_inputs(results_dir, data_root, fused_root), overwrite)
    results = load_results(Path(results_dir), Path(fused_root))
    methods = results.methods(cfg.baselines)
    if not methods:
        raise MissingInputError(
            f"{results_dir}: no results found (fusion_metrics/, detect/, segment/ are empty or absent); "
            "run the pipeline (`dvc repro`) first"
        )
    with atomic_dir(
        out_dir,
        inputs=report_inputs(results_dir, data_root, fused_root),
        overwrite=overwrite,
        kind="report",
    ) as tmp:
        doc, summary = _assemble(results, methods, Path(data_root), Path(fused_root), tmp, cfg)
        write_text(tmp / "report.md", render_markdown(doc))
        write_text(tmp / "report.html", render_html(doc, tmp))
        write_text(tmp / "summary.json", json.dumps(_json_safe(summary), indent=2) + "\n")
    log.info("report written to %s", out_dir)


def report_inputs(results_dir: Path, data_root: Path, fused_root: Path) -> list[Path]:
    """What the report reads (`mmif.report.loading`): its output must stay clear of these."""
    results_dir = Path(results_dir)
    parts = ("fusion_metrics", "detect", "segment", "train", "coconet", "scores")
    return [*(results_dir / p for p in parts), Path(data_root), Path(fused_root)]


def _assemble(
    results: Results,
    methods: list[str],
    data_root: Path,
    fused_root: Path,
    out: Path,
    cfg: ReportConfig,
) -> tuple[Document, dict[str, Any]]:
    tables, figs = out / "tables", out / "plots"
    baselines = [b for b in cfg.baselines if b in methods]
    manifest = _manifest(data_root)
    conv = conventions(results)
    conv_text = ", ".join(sorted(set(conv.values()))) or "n/a"
    doc = Document(f"Fusion benchmark report: {manifest.name if manifest else 'unknown dataset'}")
    notes: list[str] = []

    runs = {t: results.task_runs(t) for t in TASKS}
    summaries = {t: task_summary(t, runs[t], methods, cfg.ci_level) for t in TASKS if runs[t]}
    scores = {t: headline_scores(t, runs[t]) for t in summaries}
    protocols = {t: task_protocols(runs[t]) for t in TASKS}
    visibility = manifest.modality_visibility if manifest else None
    sig = significance(runs, cfg, visibility)
    notes += sig.notes
    if summaries:
        _write_plot_data(summaries, methods, out / "plot_data")

    # --- about -----------------------------------------------------------------------------
    about = doc.section("About this run")
    about.add(Bullets(_dataset_facts(manifest, data_root)))
    about.add(Bullets(_run_facts(results, methods, conv, conv_text, cfg)))
    about.add(Paragraph(STAT_METHODS.format(level=cfg.ci_level)))
    marks = ", ".join(f"`{mark_for(i)}` against `{b}`" for i, b in enumerate(cfg.baselines))
    about.add(
        Paragraph(
            BOOTSTRAP_METHOD.format(
                b=cfg.bootstrap_samples,
                seed=cfg.seed,
                max_dets=cfg.max_dets,
                alpha=cfg.alpha,
                marks=marks,
                level=cfg.ci_level,
            )
        )
    )

    # --- fusion metrics ----------------------------------------------------------------------
    sec = doc.section("Fusion metrics")
    fusion = fusion_table(results, methods)
    metric_names = fusion_metric_names(results)
    caption = f"Fusion metrics, mean over the images ({conv_text} convention, docs/METRICS.md)"
    if fusion.empty:
        sec.add(Paragraph("Fusion metrics: not available (no results/fusion_metrics/*.json)."))
    else:
        sec.add(
            Table(
                caption,
                fusion,
                _files("tables", write_table(fusion, tables, "fusion_metrics", caption)),
            )
        )
        _add(sec, plots.plot_fusion_heatmap(fusion, metric_names, conv_text, figs))
        missing = [m for m in methods if m not in results.fusion]
        if missing:
            sec.add(Paragraph(f"Fusion metrics not available for: {', '.join(missing)}."))

    # --- tasks -------------------------------------------------------------------------------
    for task in TASKS:
        sec = doc.section(TASK_TITLE[task])
        skipped = results.skipped.get(task, {})
        if task not in summaries:
            why = (
                "skipped by the stage: " + "; ".join(sorted(set(skipped.values())))
                if skipped
                else f"no results/{task}/<method>/seed_<s>/metrics.json"
            )
            sec.add(Paragraph(f"{TASK_TITLE[task]}: not available ({why})."))
            continue
        summary = summaries[task]
        files = write_table(
            summary, tables, f"{task}_scores", f"{task}: mean, std and t-interval over seeds"
        )
        display = task_display(summary, methods, sig.comparisons)
        caption = (
            f"{TASK_TITLE[task]} on the test split, protocol {protocol_text(protocols[task])}: "
            f"mean ± std [{cfg.ci_level:.0%} t-interval] over seeds; "
            f"marks = significant gain in {TESTED_SCORE[task]} ({_mark_legend(cfg)})"
        )
        sec.add(Table(caption, display, _files("tables", files)))
        missing = [m for m in methods if m not in runs[task]]
        if missing:
            listed = ", ".join(f"{m} ({skipped[m]})" if m in skipped else m for m in missing)
            sec.add(Paragraph(f"{TASK_TITLE[task]} results not available for: {listed}."))
        pc = per_class_table(task, runs[task], methods)
        if pc.shape[1] > 1:
            cap = (
                f"{task}: per-class {PER_CLASS_KEY[task]}, mean over seeds "
                f"(protocol {protocol_text(protocols[task])})"
            )
            sec.add(
                Table(cap, pc, _files("tables", write_table(pc, tables, f"{task}_per_class", cap)))
            )
            _add(
                sec,
                plots.plot_per_class(
                    pc, task, PER_CLASS_KEY[task], figs, protocol_text(protocols[task])
                ),
            )
        by_cond = (
            detection_by_condition(runs[task], methods, cfg.max_dets)
            if task == "detect"
            else segmentation_by_condition(runs[task], methods)
        )
        if not by_cond.empty:
            cap = (
                f"{task}: per-class {PER_CLASS_KEY[task]} by capture condition (day / night from the "
                "image names), recomputed from the saved per-image results, mean over seeds "
                f"(protocol {protocol_text(protocols[task])})"
            )
            name = f"{task}_per_condition"
            sec.add(Table(cap, by_cond, _files("tables", write_table(by_cond, tables, name, cap))))

    if summaries:
        sec = doc.section("Task scores at a glance")
        _add(
            sec,
            plots.plot_task_scores(
                summaries,
                runs,
                scores,
                methods,
                baselines,
                figs,
                cfg.ci_level,
                {t: protocol_text(p) for t, p in protocols.items()},
            ),
        )

    # --- differences -------------------------------------------------------------------------
    _differences_section(doc, sig, runs, protocols, methods, baselines, tables, figs, cfg)

    # --- metric vs task ----------------------------------------------------------------------
    sec = doc.section("Do fusion metrics predict task scores?")
    correlations = correlation_table(fusion, summaries, scores)
    if correlations.empty:
        sec.add(
            Paragraph("Not available: needs fusion metrics and task scores for the same methods.")
        )
    else:
        cap = "Spearman's rank correlation between each fusion metric and each task score over the methods"
        sec.add(
            Table(
                cap,
                _correlation_display(correlations),
                _files("tables", write_table(correlations, tables, "correlations", cap)),
            )
        )
        for f in plots.plot_correlations(
            fusion, metric_names, summaries, scores, correlations, methods, baselines, figs
        ):
            sec.add(f)

    # --- qualitative grid --------------------------------------------------------------------
    sec = doc.section("Qualitative comparison")
    grid, grid_text = qualitative_grid(data_root, fused_root, methods, runs["detect"], cfg, figs)
    sec.add(grid if grid is not None else Paragraph(grid_text))

    # --- curves ------------------------------------------------------------------------------
    sec = doc.section("Training curves")
    for task in TASKS:
        fig = (
            plots.plot_task_curves(
                task, runs[task], methods, baselines, figs, protocol_text(protocols[task])
            )
            if runs[task]
            else None
        )
        sec.add(
            fig
            if fig is not None
            else Paragraph(f"{TASK_TITLE[task]} training curves: not available.")
        )
    for method, curve in results.loss_curves.items():
        _add(sec, plots.plot_loss_curve(method, curve.value, curve.source, figs))
    if "coconet" not in results.loss_curves:
        sec.add(
            Paragraph(
                "CoCoNet loss curve: not available (no results/coconet/loss_curve.csv "
                "or models/coconet/loss_curve.csv)."
            )
        )

    if notes:
        doc.section("Notes").add(Bullets(notes))
    return doc, _summary(
        results, manifest, methods, conv_text, summaries, sig, fusion, cfg, protocols
    )


def _differences_section(
    doc: Document,
    sig: Significance,
    runs: dict[str, dict],
    protocols: dict[str, dict[str, str]],
    methods: list[str],
    baselines: list[str],
    tables: Path,
    figs: Path,
    cfg: ReportConfig,
) -> None:
    """Differences to the baselines, the methods indistinguishable from the best, the known
    effects (sanity check) and the recomputed statistic."""
    sec = doc.section("Differences with training variance")
    if sig.comparisons.empty:
        sec.add(
            Paragraph(
                "Differences to the baselines: not available (no task runs with per-image results "
                "for a baseline and another method, or bootstrap_samples is 0)."
            )
        )
        return
    level = f"{cfg.ci_level:.0%}"
    cap = (
        f"Method minus baseline: difference of seed means, {level} interval and two-sided p over seeds "
        f"and test images ({cfg.bootstrap_samples} image resamples); seed_sd = std over seeds of the "
        "within-seed difference (shared models); significant at alpha = "
        f"{cfg.alpha:g}"
    )
    shown = sig.comparisons.drop(columns=["n_images", "significant", "se_seeds", "se_images", "df"])
    sec.add(
        Table(
            cap, shown, _files("tables", write_table(sig.comparisons, tables, "significance", cap))
        )
    )
    _add(
        sec,
        plots.plot_differences(
            sig.comparisons, methods, baselines, figs, cfg.ci_level, _protocol_titles(protocols)
        ),
    )
    if not sig.best.empty:
        cap = (
            f"The best method per task (highest seed mean) and every method's difference to it "
            f"({level} interval, p); indistinguishable = not significantly worse at alpha = {cfg.alpha:g}"
        )
        sec.add(
            Table(
                cap, sig.best, _files("tables", write_table(sig.best, tables, "best_methods", cap))
            )
        )
        summary = []
        for task, group in sig.best.groupby("task", sort=False):
            same = list(group.loc[group["indistinguishable"], "method"])
            summary.append(
                f"{TASK_TITLE.get(str(task), task)} ({TESTED_SCORE.get(str(task), '')}, protocol "
                f"{protocol_text(protocols.get(str(task), {}))}): best {group['best'].iloc[0]}; "
                f"indistinguishable from it: {', '.join(same[1:]) or 'none'}."
            )
        sec.add(Bullets(summary))
    sub = doc.section("Known effects (sanity check)")
    if sig.sanity.empty:
        sub.add(
            Paragraph(
                "Not available: the dataset records no modality visibility (only the synthetic "
                "default does), or the ir / vis runs are missing."
            )
        )
    else:
        cap = (
            "Effects the synthetic data was built to show (manifest modality_visibility): per-class "
            f"{'/'.join(PER_CLASS_SCORE.values())} of the better minus the worse source, {level} interval over seeds "
            f"and test images; detected = significant in the expected direction at alpha = {cfg.alpha:g}"
        )
        sub.add(
            Table(cap, sig.sanity, _files("tables", write_table(sig.sanity, tables, "sanity", cap)))
        )
        lines = []
        for task, group in sig.sanity.groupby("task", sort=False):
            found = group[group["detected"]]
            missed = group[~group["detected"]]
            lines.append(
                f"{TASK_TITLE.get(str(task), task)}: detected {', '.join(found['effect']) or 'none'}"
                + (f"; not detected: {', '.join(missed['effect'])}" if len(missed) else "")
                + "."
            )
        sub.add(Bullets(lines))
    recomputed = _recomputed(sig, runs)
    if not recomputed.empty:
        cap = (
            "The tested statistic recomputed on the full test set next to the stage's values, per "
            "seed: equal by construction (one AP definition; the same confusion counts). "
            "Cross-checks: torchmetrics' COCO mAP50 (equal up to its float32 recall points) and "
            "ultralytics' mAP50 (its own interpolation)."
        )
        sec.add(
            Table(
                cap,
                recomputed,
                _files("tables", write_table(recomputed, tables, "recomputed", cap)),
            )
        )


def _protocol_titles(protocols: dict[str, dict[str, str]]) -> dict[str, str]:
    return {t: protocol_text(p) for t, p in protocols.items()}


def _mark_legend(cfg: ReportConfig) -> str:
    return (
        ", ".join(f"{mark_for(i)} vs {b}" for i, b in enumerate(cfg.baselines))
        + f"; p < {cfg.alpha:g}"
    )


def _add(sec: Section, fig: Figure | None) -> None:
    if fig is not None:
        sec.add(fig)


def _files(folder: str, names: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(f"{folder}/{n}" for n in names)


def _manifest(data_root: Path) -> Manifest | None:
    try:
        return Manifest.load(data_root)
    except (FileNotFoundError, json.JSONDecodeError, TypeError) as exc:
        log.warning("dataset manifest not available: %s", exc)
        return None


def _dataset_facts(manifest: Manifest | None, data_root: Path) -> list[str]:
    if manifest is None:
        return [f"Dataset: not available (no readable {data_root / 'manifest.json'})."]
    splits = ", ".join(f"{k} {v}" for k, v in manifest.splits.items())
    facts = [
        f"Dataset: {manifest.name} ({manifest.provenance}); pairs per split: {splits or 'n/a'}.",
        f"Visible images in colour: {'yes' if manifest.colour_visible else 'no'}; "
        f"detection labels: {'yes' if manifest.has_det_labels else 'no'}; segmentation masks: {'yes' if manifest.has_seg_masks else 'no'}.",
    ]
    if manifest.det_classes:
        facts.append(f"Detection classes: {', '.join(manifest.det_classes)}.")
    if manifest.seg_classes:
        facts.append(f"Segmentation classes: {', '.join(manifest.seg_classes)}.")
    return facts


def vgg_statements(results: Results) -> list[str]:
    """Whether each VGG-using method (CoCoNet and variants) had ImageNet VGG19 weights, with the
    files that say so; one sentence for CoCoNet even when it is absent or silent."""
    sources: dict[str, list[tuple[bool, str]]] = {}
    for method, item in results.train_metrics.items():
        v = find_key(item.value, "vgg_pretrained")
        if v is not None:
            sources.setdefault(method, []).append((bool(v), item.source))
    for method, info in results.fused_info.items():
        v = find_key(info, "vgg_pretrained")
        if v is not None:
            sources.setdefault(method, []).append(
                (bool(v), f"{method}/info.json of the fused images")
            )
    out = []
    if "coconet" not in sources:
        if "coconet" in results.train_metrics or "coconet" in results.fused_info:
            out.append(
                "CoCoNet VGG19 pretrained: unknown (no vgg_pretrained field in its training summary or info.json)."
            )
        else:
            out.append("CoCoNet VGG19 pretrained: not applicable (CoCoNet not in this run).")
    for method, found in sources.items():
        name = "CoCoNet" if method == "coconet" else method
        values = {v for v, _ in found}
        where = ", ".join(src for _, src in found)
        if len(values) > 1:
            out.append(
                f"{name} VGG19 pretrained: inconsistent ({'; '.join(f'{src}: {v}' for v, src in found)})."
            )
        elif values.pop():
            out.append(f"{name} VGG19 pretrained: yes, ImageNet weights ({where}).")
        else:
            out.append(
                f"{name} VGG19 pretrained: NO, randomly initialised ({where}); its contrastive loss used "
                "untrained features, so the results are not those of the published method."
            )
    return out


def _run_facts(
    results: Results, methods: list[str], conv: dict[str, str], conv_text: str, cfg: ReportConfig
) -> list[str]:
    facts = [
        f"Methods: {', '.join(methods)} (baselines: {', '.join(b for b in cfg.baselines if b in methods) or 'none found'})."
    ]
    if len(set(conv.values())) > 1:
        facts.append(
            "Fusion metric convention differs between methods: "
            + ", ".join(f"{m}: {c}" for m, c in conv.items())
            + "; the numbers are not comparable."
        )
    else:
        facts.append(
            f"Fusion metric convention: {conv_text} (see docs/METRICS.md; `cddfuse` follows the common CDDFuse evaluator, `standard` the textbook definitions)."
        )
    for task in TASKS:
        runs = results.task_runs(task)
        if runs:
            facts.append(
                f"{TASK_TITLE[task]} seeds: "
                + "; ".join(f"{m}: {', '.join(map(str, s))}" for m, s in runs.items())
                + "."
            )
            protocols = task_protocols(runs)
            facts.append(
                f"{TASK_TITLE[task]} protocol: {protocol_text(protocols)} ({PROTOCOL_MEANING.get(_main(protocols), '')})."
            )
            first = next(iter(next(iter(runs.values())).values())).metrics
            if first.get("base_model") or first.get("base_encoder"):
                shared = first.get("base_model") or first.get("base_encoder")
                facts.append(
                    f"{TASK_TITLE[task]} shared model: {shared}, pretrained: {first.get('base_pretrained', 'n/a')}, "
                    f"epochs: {first.get('base_epochs', 'n/a')} (trained once per seed on the train split's infrared and visible images)."
                )
            else:
                model = first.get("model") or " ".join(
                    str(first.get(k)) for k in ("arch", "encoder") if first.get(k)
                )
                if model:
                    facts.append(
                        f"{TASK_TITLE[task]} model: {model}, pretrained: {first.get('pretrained', 'n/a')}, epochs: {first.get('epochs', 'n/a')}."
                    )
        else:
            facts.append(f"{TASK_TITLE[task]}: not available.")
    facts += vgg_statements(results)
    return facts


def _recomputed(sig: Significance, runs: dict[str, dict]) -> pd.DataFrame:
    rows = []
    for task, stats in sig.tasks.items():
        for method in stats.methods:
            scores = stats.scores(method)
            for seed, value in zip(scores.seeds, scores.full, strict=True):
                stage = runs[task][method][seed].metrics
                rows.append(
                    {
                        "task": task,
                        "score": stats.score,
                        "method": method,
                        "seed": seed,
                        "recomputed": value,
                        "stage": stage.get(stats.score),
                        "stage_torchmetrics": stage.get(f"tm_{stats.score}"),
                        "stage_ultralytics": stage.get(f"ul_{stats.score}"),
                    }
                )
    return pd.DataFrame(rows)


def _correlation_display(correlations: pd.DataFrame) -> pd.DataFrame:
    """Wide view: one row per fusion metric, one rho column per task score."""
    df = correlations.assign(col=correlations["task"] + " " + correlations["score"])
    return (
        df.pivot(index="metric", columns="col", values="rho")
        .reset_index()
        .rename_axis(columns=None)
    )


def _summary(
    results: Results,
    manifest: Manifest | None,
    methods: list[str],
    conv_text: str,
    summaries: dict[str, pd.DataFrame],
    sig: Significance,
    fusion: pd.DataFrame,
    cfg: ReportConfig,
    protocols: dict[str, dict[str, str]],
) -> dict[str, Any]:
    """Headline numbers per method for `dvc metrics show` (nested keys, NaN as null)."""
    out: dict[str, Any] = {
        "dataset": manifest.name if manifest else None,
        "fusion_metric_convention": conv_text,
        "coconet_vgg_pretrained": _first_found(
            "vgg_pretrained", results.coconet_metrics, results.fused_info.get("coconet")
        ),
        "methods": {},
    }
    fus = fusion.set_index("method") if not fusion.empty else pd.DataFrame()
    for m in methods:
        entry: dict[str, Any] = {}
        for task, summary in summaries.items():
            sub = summary[summary["method"] == m].set_index("score")
            if sub.empty:
                continue
            t: dict[str, Any] = {
                "protocol": protocols.get(task, {}).get(m),
                "n_seeds": int(sub["n_seeds"].max()),
            }
            for score in headline_scores(task, results.task_runs(task)):
                if score in sub.index:
                    t[score] = sub.loc[score, "mean"]
                    t[f"{score}_std"] = sub.loc[score, "std"]
            comp = sig.comparisons
            for _, row in comp[(comp["task"] == task) & (comp["method"] == m)].iterrows():
                key = f"{row['score']}_delta_vs_{row['baseline']}"
                t[key] = row["delta"]
                t[f"{key}_ci_low"] = row["ci_low"]
                t[f"{key}_ci_high"] = row["ci_high"]
                t[f"{row['score']}_p_vs_{row['baseline']}"] = row["p_value"]
            best = sig.best[(sig.best["task"] == task) & (sig.best["method"] == m)]
            if len(best):
                t["indistinguishable_from_best"] = bool(best["indistinguishable"].iloc[0])
            entry[task] = t
        if m in getattr(fus, "index", []):
            entry["fusion"] = {
                k: fus.loc[m, k] for k in fus.columns if k not in ("convention", "n_images")
            }
        out["methods"][m] = entry
    out["gain_marks"] = {b: GAIN_MARKS[i % len(GAIN_MARKS)] for i, b in enumerate(cfg.baselines)}
    out["protocols"] = {t: protocol_text(p) for t, p in protocols.items() if p}
    out["best"] = {
        str(task): {
            "best": str(group["best"].iloc[0]),
            "indistinguishable": [str(x) for x in group.loc[group["indistinguishable"], "method"]],
        }
        for task, group in sig.best.groupby("task", sort=False)
    }
    out["sanity"] = {
        f"{row['task']}: {row['effect']}": {
            "delta": row["delta"],
            "ci_low": row["ci_low"],
            "ci_high": row["ci_high"],
            "p_value": row["p_value"],
            "detected": bool(row["detected"]),
        }
        for _, row in sig.sanity.iterrows()
    }
    return out


def _write_plot_data(summaries: dict[str, pd.DataFrame], methods: list[str], folder: Path) -> None:
    """One row per method, one column per task score (mean and std over seeds).

    A flat table that `dvc plots` can draw and compare between experiments (dvc.yaml `plots:`).
    """
    rows = []
    for m in methods:
        row: dict[str, Any] = {"method": m}
        for task, summary in summaries.items():
            for _, r in summary[summary["method"] == m].iterrows():
                row[f"{task}_{r['score']}"] = r["mean"]
                row[f"{task}_{r['score']}_std"] = r["std"]
        rows.append(row)
    write_text(
        folder / "task_scores.csv", pd.DataFrame(rows).to_csv(index=False, float_format="%.6g")
    )


def _first_found(key: str, *sources: Any) -> Any:
    for src in sources:
        value = find_key(src, key) if src is not None else None
        if value is not None:
            return value
    return None


def _json_safe(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value
