"""`mmif metrics`: fusion quality metrics of fused images against their two sources.

- folders:  mmif metrics --ir DIR --vis DIR --fused DIR [--convention cddfuse|standard] --out FILE.csv
- pipeline: mmif metrics --data data/prepared --split test --fused data/fused/NAME --out FILE.csv --json FILE.json

The CSV has one row per image (column `name`, the image stem, then one column per metric,
named as in METRICS.md) and no summary row. The JSON holds the means over the images (a DVC
metrics file), their number and the convention used. Neither file may be written over an input
or a folder.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from mmif.errors import InputError
from mmif.io import check_output_file, write_json, write_text
from pipelines.common import add_params_argument, load_params

log = logging.getLogger(__name__)

HELP = "fusion quality metrics (EN, SD, SF, AG, MI, SCD, VIF, Qabf, SSIM, ...) of fused images"
DESCRIPTION = __doc__


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--ir", type=Path, help="folder of infrared images")
    p.add_argument("--vis", type=Path, help="folder of visible images")
    p.add_argument(
        "--fused",
        type=Path,
        required=True,
        help="folder of fused images (pipeline mode: the method's folder)",
    )
    p.add_argument("--data", type=Path, help="prepared dataset (pipeline mode)")
    p.add_argument(
        "--split",
        default=None,
        help="split to score in pipeline mode (default: params metrics.split or test)",
    )
    p.add_argument(
        "--convention",
        default=None,
        help="cddfuse (default, matches recent papers) or standard (textbook)",
    )
    p.add_argument(
        "--names", default=None, help="comma-separated metric names (default: params or all)"
    )
    p.add_argument("--device", default=None, help="cpu, cuda or auto")
    p.add_argument("--out", type=Path, required=True, help="per-image CSV")
    p.add_argument("--json", type=Path, help="also write the means as JSON (DVC metrics)")
    add_params_argument(p)


def run(args: argparse.Namespace) -> int:
    from metrics import evaluate_folders, table_means

    cfg = load_params(args, required=args.data is not None).metrics
    convention = args.convention or cfg.convention
    names = args.names.split(",") if args.names else cfg.names
    device = args.device or cfg.device
    if args.data is not None:
        split = args.split or cfg.split
        ir_dir, vis_dir = args.data / split / "ir", args.data / split / "vis"
        fused_dir = args.fused / split
    else:
        if args.ir is None or args.vis is None:
            raise InputError("give --ir and --vis folders (or --data for a prepared dataset)")
        ir_dir, vis_dir, fused_dir = args.ir, args.vis, args.fused
    inputs = (ir_dir, vis_dir, fused_dir, args.data)
    for path in (args.out, args.json):
        if path is not None:
            check_output_file(path, inputs)
    if args.json is not None and Path(args.json).resolve() == Path(args.out).resolve():
        raise InputError(f"--json {args.json} is the --out file too; give two different files")
    table = evaluate_folders(
        ir_dir,
        vis_dir,
        fused_dir,
        names=names,
        convention=convention,
        device=device,
        batch_size=cfg.batch_size,
    )
    write_text(args.out, table.to_csv(index=False, float_format="%.6g"))
    means = table_means(table)
    log.info(
        "%s (%s): %s", fused_dir, convention, ", ".join(f"{k}={v:.4g}" for k, v in means.items())
    )
    if args.json:
        # JSON has no NaN/Infinity (e.g. PSNR of an image with itself): write_json writes null
        write_json(args.json, {"convention": convention, "n_images": int(len(table)), **means})
    return 0
