"""`build_report`: every result of a run in one folder of tables, plots, report.md/.html and
summary.json.

    <out>/report.html          self-contained (images embedded, no external resources)
    <out>/report.md            same content, images linked by relative path
    <out>/summary.json         headline numbers for `dvc metrics`
    <out>/card.png, card.svg   the one-page results card (1200 px wide)
    <out>/tables/*.csv, *.md   numeric tables (CSV) and their display form (Markdown)
    <out>/plots/*.png, *.svg   figures

The folder is written atomically (`mmif.io.atomic_dir`): a failed build leaves the previous
report in place.
"""

from __future__ import annotations

import json
import logging
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from mmif.errors import MissingInputError
from mmif.io import atomic_dir, check_output_dir, write_json, write_text
from mmif.layout import Manifest
from mmif.protocol import is_paired
from report import plots
from report.card import card_panel, draw_card, save_card
from report.conditions import detection_condition_cells, segmentation_condition_cells
from report.config import ReportConfig
from report.document import (
    Bullets,
    Document,
    Figure,
    Paragraph,
    Section,
    Table,
    links,
    render_markdown,
)
from report.figure_files import written_together
from report.findings import (
    TaskFindings,
    answer_bullets,
    check_bullets,
    lead_paragraph,
    markdown_link,
    names,
    task_findings,
)
from report.grid import qualitative_grid
from report.html import render_html
from report.loading import TASKS, Results, find_key, load_results
from report.precision import BOUNDS_NOTE, significant
from report.ranking import (
    method_order,
    ranking_display,
    ranking_table,
    select,
    selection_note,
)
from report.significance import (
    GAIN_MARKS,
    PER_CLASS_SCORE,
    TESTED_SCORE,
    Significance,
    mark_for,
    significance,
)
from report.tables import (
    PER_CLASS_KEY,
    best_display,
    cell_label,
    cell_text,
    cells_table,
    conventions,
    correlation_display,
    correlation_table,
    fusion_display,
    fusion_intervals,
    fusion_labels,
    fusion_metric_names,
    fusion_table,
    headline_scores,
    per_class_cells,
    protocol_text,
    sanity_display,
    significance_display,
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
    "Task scores are the mean over the training seeds with a {level:.0%} confidence interval from Student's t "
    "distribution with n - 1 degrees of freedom (no interval with one seed; the sample standard deviation is in "
    "the CSV files). Fusion metrics are means over the test images with the {level:.0%} t-interval over the "
    "images. Spearman's rho between a fusion metric and a task score has a {level:.0%} interval from Fisher's z "
    "with the Bonett-Wright variance (1 + rho^2 / 2) / (n - 3) over the n methods (no interval below 4 methods)."
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
    "degrees of freedom (report/comparison.py; calibrated on simulated studies: "
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
    study: list[str] | None = None,
) -> None:
    """Read every metric file under `results_dir` and write the comparison report to `out_dir`.

    data_root: prepared dataset (manifest.json, test images for the qualitative grid);
    fused_root: fused images, `<fused_root>/<method>/<split>/<stem>.png` and info.json.
    Missing parts (no detection or segmentation results, no CoCoNet, no manifest) are reported
    as not available. `out_dir` may lie inside `results_dir` (results/report) but not be, hold
    or lie inside anything the report reads; a non-empty folder mmif did not write is replaced
    only with `overwrite`. study: the methods of the study (params.yaml `methods` and the
    registered ones); results of other methods (left behind by a method taken out) are not
    reported. None: every method found.
    """
    check_output_dir(out_dir, report_inputs(results_dir, data_root, fused_root), overwrite)
    results = load_results(Path(results_dir), Path(fused_root))
    if study is not None:
        dropped = results.keep(study)
        if dropped:
            log.info(
                "left out of the report (not a method of the study; results of a method taken "
                "out?): %s",
                ", ".join(dropped),
            )
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
        # figure files are written together at the end of the block, in cfg.jobs processes;
        # report.html embeds the PNGs, so it is rendered after
        with written_together(cfg.jobs):
            doc, summary = _assemble(results, methods, Path(data_root), Path(fused_root), tmp, cfg)
        write_text(tmp / "report.md", render_markdown(doc))
        write_text(tmp / "report.html", render_html(doc, tmp))
        write_json(tmp / "summary.json", summary)
    log.info("report written to %s", out_dir)


def report_inputs(results_dir: Path, data_root: Path, fused_root: Path) -> list[Path]:
    """What the report reads (`report.loading`): its output must stay clear of these."""
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
    findings_sec = doc.section("Findings", anchor="findings")  # filled last, read first
    card_sec = doc.section("Results card", anchor="card")
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
    about.add(Paragraph(BOUNDS_NOTE))
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
    caption = (
        f"Fusion metrics, mean over the test images ± half-width of the {cfg.ci_level:.0%} t-interval over the "
        f"images ({conv_text} convention, docs/METRICS.md; means in fusion_metrics.csv, intervals in "
        "fusion_metrics_ci.csv)"
    )
    if fusion.empty:
        sec.add(Paragraph("Fusion metrics: not available (no results/fusion_metrics/*.json)."))
    else:
        intervals = fusion_intervals(results, methods, cfg.ci_level)
        shown = fusion_display(fusion, intervals)
        files = write_table(fusion, tables, "fusion_metrics", caption, shown)
        write_table(intervals, tables, "fusion_metrics_ci", caption)
        sec.add(Table(caption, shown, _files("tables", files)))
        _add(
            sec,
            plots.plot_fusion_heatmap(
                fusion,
                metric_names,
                conv_text,
                figs,
                fusion_labels(fusion, intervals, metric_names),
            ),
        )
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
        display = task_display(summary, methods, sig.comparisons)
        caption = (
            f"{TASK_TITLE[task]} on the test split, protocol {protocol_text(protocols[task])}: "
            f"mean [{cfg.ci_level:.0%} t-interval] over seeds, clipped to [0, 1]; "
            f"marks = significant gain in {TESTED_SCORE[task]} ({_mark_legend(cfg)}); std and the "
            "torchmetrics / ultralytics cross-checks (tm_*, ul_*) in the CSV"
        )
        files = write_table(summary, tables, f"{task}_scores", caption, display)
        sec.add(Table(caption, display, _files("tables", files)))
        missing = [m for m in methods if m not in runs[task]]
        if missing:
            listed = ", ".join(f"{m} ({skipped[m]})" if m in skipped else m for m in missing)
            sec.add(Paragraph(f"{TASK_TITLE[task]} results not available for: {listed}."))
        tested = TESTED_SCORE[task]
        order = method_order(task, tested, sig.best, summary) or methods
        ranked = ranking_table(task, tested, sig.best, summary, sig.comparisons, baselines)
        if not ranked.empty:
            cap = (
                f"{TASK_TITLE[task]}: every method ranked by {tested} (seed mean [{cfg.ci_level:.0%} "
                "t-interval over seeds]); group: the best, the methods indistinguishable from it "
                f"(not significantly worse at alpha = {cfg.alpha:g}) and the others; differences "
                f"to the best and to each source with their {cfg.ci_level:.0%} interval over seeds "
                f"and test images ({_mark_legend(cfg)}; protocol {protocol_text(protocols[task])})"
            )
            files = write_table(
                ranked, tables, f"ranking_{task}", cap, ranking_display(ranked, baselines)
            )
            sec.add(Table(cap, ranking_display(ranked, baselines), _files("tables", files)))
        shown = select([m for m in order if m in methods], baselines)
        cells = per_class_cells(task, runs[task], methods)
        pc = cells_table(cells, methods, _mean)
        if pc.shape[1] > 1:
            level = cfg.ci_level
            pc_text = cells_table(cells, shown, lambda v: cell_text(v, cfg.ci_level))
            name = f"{task}_per_class"
            cap = (
                f"{task}: per-class {PER_CLASS_KEY[task]}, mean over seeds ± half-width of the "
                f"{level:.0%} t-interval over seeds (written [low, high] where [0, 1] clips it; "
                f"protocol {protocol_text(protocols[task])})"
            )
            cap = _with_note(cap, selection_note(shown, len(pc), tested, f"{name}.csv"))
            files = write_table(pc, tables, name, cap, pc_text)
            sec.add(Table(cap, pc_text, _files("tables", files)))
            # the heatmap shows the table's selection (all methods up to MANY_METHODS)
            ordered = cells_table(cells, [m for m in order if m in shown], _mean)
            _add(
                sec,
                plots.plot_per_class(
                    ordered,
                    task,
                    PER_CLASS_KEY[task],
                    figs,
                    protocol_text(protocols[task]),
                    cells_table(
                        cells, list(ordered["method"]), lambda v: cell_label(v, cfg.ci_level)
                    ),
                    note=selection_note(shown, len(pc), tested, f"{name}.csv"),
                ),
            )
        cond_cells = (
            detection_condition_cells(runs[task], methods, cfg.max_dets)
            if task == "detect"
            else segmentation_condition_cells(runs[task], methods)
        )
        if cond_cells:
            by_cond = cells_table(cond_cells, methods, _mean)
            cond_text = cells_table(cond_cells, shown, lambda v: cell_text(v, cfg.ci_level))
            name = f"{task}_per_condition"
            cap = (
                f"{task}: per-class {PER_CLASS_KEY[task]} by capture condition (day / night from the "
                "image names), recomputed from the saved per-image results, mean over seeds ± "
                f"half-width of the {cfg.ci_level:.0%} t-interval over seeds "
                f"(protocol {protocol_text(protocols[task])})"
            )
            cap = _with_note(cap, selection_note(shown, len(by_cond), tested, f"{name}.csv"))
            files = write_table(by_cond, tables, name, cap, cond_text)
            sec.add(Table(cap, cond_text, _files("tables", files)))

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
    _differences_section(
        doc, sig, runs, protocols, methods, baselines, tables, figs, cfg, summaries
    )

    # --- metric vs task ----------------------------------------------------------------------
    sec = doc.section("Do fusion metrics predict task scores?")
    correlations = correlation_table(fusion, summaries, scores, cfg.ci_level)
    if correlations.empty:
        sec.add(
            Paragraph("Not available: needs fusion metrics and task scores for the same methods.")
        )
    else:
        n = int(correlations["n_methods"].max())
        cap = (
            "Spearman's rank correlation between each fusion metric and each task score over the "
            f"{n} methods [{cfg.ci_level:.0%} interval, Fisher's z with the Bonett-Wright variance]"
            + (
                f"; with {n} methods these are rough: an interval that excludes 0 is the least to ask for"
                if n < 10
                else ""
            )
        )
        # the figures show the score each task is tested on (a grid of every fusion metric
        # costs a few seconds per score to draw); the table has every score
        plotted = {
            t: [TESTED_SCORE[t]] if TESTED_SCORE.get(t) in names else names[:1]
            for t, names in scores.items()
        }
        cap += "; figures for " + ", ".join(f"{t} {n[0]}" for t, n in plotted.items() if n)
        shown = correlation_display(correlations)
        files = write_table(correlations, tables, "correlations", cap, shown)
        sec.add(Table(cap, shown, _files("tables", files)))
        for f in plots.plot_correlations(
            fusion, metric_names, summaries, plotted, correlations, methods, baselines, figs
        ):
            sec.add(f)

    # --- qualitative grid --------------------------------------------------------------------
    sec = doc.section("Qualitative comparison")
    grid_order = next(
        (
            (t, o)
            for t in TASKS
            if t in summaries
            for o in [method_order(t, TESTED_SCORE[t], sig.best, summaries[t])]
            if o
        ),
        ("", methods),
    )
    grid_methods = select([m for m in grid_order[1] if m in methods], baselines)
    grid, grid_text = qualitative_grid(
        data_root, fused_root, grid_methods, runs["detect"], cfg, figs
    )
    if grid is not None and len(grid_methods) < len(methods):
        score = TESTED_SCORE[grid_order[0]] if grid_order[0] else "name"
        grid.caption = _with_note(
            grid.caption, selection_note(grid_methods, len(methods), score, "data/fused/")
        )
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

    # --- findings and card (first in the document, built from everything above) -----------
    found = {
        task: task_findings(
            task,
            TASK_TITLE[task],
            summaries[task],
            sig.comparisons,
            sig.best,
            sig.sanity,
            correlations,
            list(cfg.baselines),
            protocol_text(protocols[task]),
        )
        for task in TASKS
        if task in summaries
    }
    anchors = doc.anchors()

    def link(text: str, anchor: str) -> str:
        return markdown_link(text, anchor) if anchor in anchors else text

    findings_sec.add(Paragraph(lead_paragraph(len(found), cfg.ci_level, cfg.alpha)))
    for task in TASKS:  # the answers first, every task, then the checks
        if task in found:
            f = found[task]
            findings_sec.add(
                Paragraph(f"**{TASK_TITLE[task]}** ({f.score}, protocol {f.protocol})")
            )
            findings_sec.add(Bullets(answer_bullets(f, link, cfg.alpha)))
        else:
            findings_sec.add(Paragraph(f"**{TASK_TITLE[task]}**: no results in this run."))
    checks = [b for f in found.values() for b in check_bullets(f, link)]
    if checks:
        findings_sec.add(Paragraph("**Checks**"))
        findings_sec.add(Bullets(checks))
    card = _card(found, summaries, manifest, results, conv_text, cfg, out)
    if card is not None:
        card_sec.add(card)
    else:
        card_sec.add(Paragraph("Not available: no task scores."))
    broken = links(doc) - doc.anchors()
    if broken:  # a programming error: every link is made with `link` above
        raise RuntimeError(f"report links to missing anchors: {sorted(broken)}")
    return doc, _summary(
        results, manifest, methods, conv_text, summaries, sig, fusion, cfg, protocols, found
    )


def _with_note(caption: str, note: str) -> str:
    return f"{caption}. {note}" if note else caption


def _mean(values: list[float]) -> float:
    return float(np.mean(values)) if values else np.nan


def _card(
    found: dict[str, TaskFindings],
    summaries: dict[str, pd.DataFrame],
    manifest: Manifest | None,
    results: Results,
    conv_text: str,
    cfg: ReportConfig,
    out: Path,
) -> Figure | None:
    """card.png / card.svg next to report.html, as a figure of the report."""
    if not found:
        return None
    panels = [card_panel(f, summaries[t], list(cfg.baselines)) for t, f in found.items()]
    name = manifest.name if manifest else "unknown dataset"
    facts = [f"Dataset: {name}" + (f" ({manifest.provenance})" if manifest else "")]
    if manifest:
        facts.append("pairs: " + ", ".join(f"{k} {v}" for k, v in manifest.splits.items() if v))
    for task, f in found.items():
        seeds = sorted({s for m in results.task_runs(task).values() for s in m})
        facts.append(
            f"{TASK_TITLE[task]}: protocol {f.protocol}, seeds {', '.join(map(str, seeds))}"
        )
    facts.append(f"fusion-metric convention: {conv_text}")
    when = _results_time(results)
    if when:
        facts.append(f"results of {when}")
    footer = (
        f"Score: mean over seeds with its {cfg.ci_level:.0%} t-interval over seeds (clipped to the score's range), "
        "rounded to two significant digits of the interval's half-width. Shaded: the best (dark) and the methods "
        "indistinguishable from it (light). ★: significantly better than both sources. Significance "
        f"(p < {cfg.alpha:g}) includes the seed-to-seed training variance and the test-image sampling. "
        "Grey squares and dotted lines: the sources."
        + (
            " The methods share each seed's task model, so differences are tested within a seed: "
            "they can be significant where these intervals overlap."
            if _all_paired(results)
            else ""
        )
        + " Full report: report.html (mmif-bench)."
    )
    fig = draw_card(f"{name}: which fusion helps which task?", facts, panels, footer)
    save_card(fig, out)
    return Figure(
        "The results card (card.png, 1200 px wide, and card.svg next to this report): every "
        "method's task score with its interval, the verdict on fusion against the sources and "
        "the run facts on one page.",
        "card.png",
        "card.svg",
    )


def _all_paired(results: Results) -> bool:
    """Every task run under a shared-model protocol (frozen, finetune)."""
    runs = [r for t in TASKS for m in results.task_runs(t).values() for r in m.values()]
    return bool(runs) and all(is_paired(str(r.metrics.get("protocol") or "retrain")) for r in runs)


def _results_time(results: Results) -> str:
    """When the newest task or fusion metrics file was written (UTC), e.g. "2026-12-06 02:41 UTC"."""
    paths = [
        r.folder / "metrics.json"
        for t in TASKS
        for m in results.task_runs(t).values()
        for r in m.values()
    ]
    paths += list((results.root / "fusion_metrics").glob("*.json"))
    times = [p.stat().st_mtime for p in paths if p.is_file()]
    if not times:
        return ""
    return datetime.fromtimestamp(max(times), tz=timezone.utc).strftime("%Y-%m-%d %H:%M UTC")


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
    summaries: dict[str, pd.DataFrame],
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
    orders = {
        t: method_order(t, TESTED_SCORE.get(t, ""), sig.best, summaries.get(t, pd.DataFrame()))
        for t in summaries
    }
    shown = {t: set(select(o, baselines)) for t, o in orders.items()}
    n_methods = max((len(o) for o in orders.values()), default=0)
    cap = (
        f"Method minus baseline: difference of seed means [{level} interval over seeds and test images, "
        f"{cfg.bootstrap_samples} image resamples; clipped to [-1, 1]] and two-sided p; seed_sd = std over "
        f"seeds of the within-seed difference (shared models); significant at alpha = {cfg.alpha:g}"
    )
    comp = sig.comparisons
    keep = [m in shown.get(t, {m}) for t, m in zip(comp["task"], comp["method"], strict=True)]
    selected = comp[keep] if len(comp) else comp
    cap = _with_note(
        cap,
        selection_note(
            sorted(set(selected["method"])), n_methods, "the tested score", "significance.csv"
        )
        + (
            " Every method's differences to the sources are in the ranking tables."
            if not all(keep)
            else ""
        ),
    )
    files = write_table(comp, tables, "significance", cap, significance_display(selected))
    sec.add(Table(cap, significance_display(selected), _files("tables", files)))
    _add(
        sec,
        plots.plot_differences(
            sig.comparisons, methods, baselines, figs, cfg.ci_level, _protocol_titles(protocols)
        ),
    )
    if not sig.best.empty:
        cap = (
            f"The best method per task (highest seed mean) and every method's difference to it "
            f"({level} interval over seeds and test images, p); value = seed mean [{level} t-interval over "
            f"seeds]; indistinguishable = not significantly worse at alpha = {cfg.alpha:g} (shown as "
            "the ranking table of each task)"
        )
        write_table(sig.best, tables, "best_methods", cap, best_display(sig.best, summaries))
        summary = []
        for task, group in sig.best.groupby("task", sort=False):
            same = list(group.loc[group["indistinguishable"], "method"])
            anchor = f"tab-ranking_{task}"
            summary.append(
                f"{TASK_TITLE.get(str(task), task)} ({TESTED_SCORE.get(str(task), '')}, protocol "
                f"{protocol_text(protocols.get(str(task), {}))}): best {group['best'].iloc[0]}; "
                f"indistinguishable from it: {names(same[1:]) or 'none'} "
                f"([ranking](#{anchor}))."
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
        shown = sanity_display(sig.sanity)
        files = write_table(sig.sanity, tables, "sanity", cap, shown)
        sub.add(Table(cap, shown, _files("tables", files)))
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
        keep = [
            m in shown.get(t, {m})
            for t, m in zip(recomputed["task"], recomputed["method"], strict=True)
        ]
        cap = (
            "The tested statistic recomputed on the full test set next to the stage's values, per "
            "seed: equal by construction (one AP definition; the same confusion counts), so "
            "|recomputed - stage| is 0 up to float rounding. Cross-checks: torchmetrics' COCO mAP50 "
            "(equal up to its float32 recall points) and ultralytics' mAP50 (its own interpolation). "
            "Single values without an interval: three significant digits."
        )
        cap = _with_note(
            cap,
            selection_note(
                sorted(set(recomputed[keep]["method"])),
                n_methods,
                "the tested score",
                "recomputed.csv",
            ),
        )
        display = _recomputed_display(recomputed[keep])
        files = write_table(recomputed, tables, "recomputed", cap, display)
        sec.add(Table(cap, display, _files("tables", files)))


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
                members = first.get("base_members") or 1
                if members > 1:
                    shared += f" ({members} networks per seed, class probabilities averaged)"
                # a fine-tuned model is calibrated again; else the shared model's offsets apply
                own = first.get("calibration")
                calibration = own or first.get("base_calibration")
                if calibration:
                    fit = (
                        "after fine-tuning on each method's own val images"
                        if own
                        else "on the val split's source images, the same for every method"
                    )
                    shared += f", calibration: {calibration} (one offset per class, fit {fit})"
                facts.append(
                    f"{TASK_TITLE[task]} shared model: {shared}, pretrained: {first.get('base_pretrained', 'n/a')}, "
                    f"epochs: {first.get('base_epochs', 'n/a')}, photometric augmentation: {first.get('base_appearance', 'n/a')} (trained once per seed on the train split's infrared and visible images)."
                )
            else:
                model = first.get("model") or " ".join(
                    str(first.get(k)) for k in ("arch", "encoder") if first.get(k)
                )
                if model:
                    facts.append(
                        f"{TASK_TITLE[task]} model: {model}, pretrained: {first.get('pretrained', 'n/a')}, epochs: {first.get('epochs', 'n/a')}."
                    )
            machine = _machine_fact(runs)
            if machine:
                facts.append(f"{TASK_TITLE[task]} {machine}")
        else:
            facts.append(f"{TASK_TITLE[task]}: not available.")
    facts += vgg_statements(results)
    return facts


def _machine_fact(runs: dict[str, dict[int, Any]]) -> str | None:
    """Where a task's models were trained and run (metrics.json `base_machine` / `machine`),
    or None when no run recorded it. Float kernels differ between CPU kinds and GPUs, and so do
    the trained networks; several machines in one study are named as such."""
    trained, scored = set(), set()
    for seeds in runs.values():
        for run in seeds.values():
            where = run.metrics.get("machine")
            if where:
                scored.add(where)
            built = run.metrics.get("base_machine") or where
            if built:
                trained.add(built)
    if not trained:
        return None
    text = f"machine: models trained on {'; '.join(sorted(trained))}"
    if scored != trained:
        text += f", then run on {'; '.join(sorted(scored))}"  # fine-tuned and/or scored
    if len(trained) > 1:
        text += (
            ". The runs come from several machines: networks trained on different CPU kinds or "
            "GPUs differ, so seed-to-seed spread includes the machines"
        )
    return text + "."


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


def _recomputed_display(recomputed: pd.DataFrame) -> pd.DataFrame:
    """Per-seed values (three significant digits: no interval) and the size of the gap between
    the recomputed and the stage's value, which should be 0."""
    out = recomputed[["task", "score", "method", "seed"]].copy()
    for col in ("recomputed", "stage", "stage_torchmetrics", "stage_ultralytics"):
        out[col] = [significant(v) for v in recomputed[col]]
    gap = (recomputed["recomputed"] - pd.to_numeric(recomputed["stage"], errors="coerce")).abs()
    out["|recomputed - stage|"] = [
        "n/a" if not np.isfinite(g) else "0" if g == 0 else f"{g:.1e}" for g in gap
    ]
    return out


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
    found: dict[str, TaskFindings],
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
    out["findings"] = {
        task: {
            "score": f.score,
            "best": f.best,
            "best_value": f.best_value,
            "best_ci_low": f.best_low,
            "best_ci_high": f.best_high,
            "indistinguishable_from_best": f.indistinguishable,
            "tested": f.tested,
            "fusion_beats_both_sources": [v.method for v in f.winners],
            "any_significant": f.any_significant,
            "best_predicting_metric": f.predictor,
        }
        for task, f in found.items()
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
