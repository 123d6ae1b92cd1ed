"""The pipeline with 40 registered methods: how long `mmif external add`, `dvc status`, the
no-op `dvc repro` and the report stage take (issue 13, item 4).

In a copy of the repository's tracked files (a temporary folder): runs `dvc repro` once, fuses
the test images with the built-in `weighted` method at N weights (one folder per weight, as a
results zoo ships them), registers the root with `mmif external add`, then times

    mmif external add        (the registration: checks every folder against the prepared pairs)
    dvc status               (stale: the 4 N new stages and the report)
    dvc repro                (the N methods' stages and the report)
    dvc status, dvc repro    (no-op: nothing changed; goal at most 15 s)
    dvc repro -f report      (the report stage alone with N + the study's methods; goal 2 min)

`--profile tiny` (the default here) is the e2e test's profile (96 x 64 images, 4 test pairs,
1-epoch shared models): the DVC and report costs scale with the number of stages and methods,
not with the image count, so it measures them in minutes. `--profile default` uses params.yaml
as it is (the 15-minute default study first, then N methods on its 32 test pairs). Prints a
table with the CPU model and the load average; wall and CPU (user + sys of the child
processes) per step. Run it on a quiet machine:

    .venv/bin/python -m benchmarks.bench_external_scale --methods 40   (from the repository root:
    it imports the e2e test's helpers from tests/)
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

from mmif.runtime import cpu_description

REPO = Path(__file__).resolve().parents[1]


def _env(cwd: Path) -> dict[str, str]:
    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env.update(
        DVC_NO_ANALYTICS="1",
        HF_HUB_OFFLINE="1",
        YOLO_OFFLINE="1",
        YOLO_CONFIG_DIR=str(cwd / ".cache" / "ultralytics"),
        MPLCONFIGDIR=str(cwd / ".cache" / "matplotlib"),
    )
    return env


def timed(cmd: list[str], cwd: Path) -> tuple[float, float, str]:
    """(wall s, CPU s of the child processes, output) of one command; raises on failure."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, cwd=cwd, env=_env(cwd), capture_output=True, text=True)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    return wall, cpu, proc.stdout + proc.stderr


def copy_repo(dest: Path, profile: str) -> None:
    from tests.pipelines.test_e2e import _tiny_params, copy_tracked_files  # one home each

    copy_tracked_files(dest)
    if profile == "tiny":
        (dest / "params.yaml").write_text(yaml.safe_dump(_tiny_params(), sort_keys=False))
    git = ["git", "-c", "user.email=b@b", "-c", "user.name=bench"]
    for cmd in (["git", "init", "-q"], [*git, "add", "-A"], [*git, "commit", "-qm", "bench"]):
        subprocess.run(cmd, cwd=dest, check=True, capture_output=True)


def write_root(root: Path, data: Path, n: int) -> None:
    """root/weighted_<w>/<stem>.png: the test pairs fused by `weighted` at n weights in [0, 1]."""
    from fusion.registry import create_method
    from mmif.io import read_image, to_tensor, to_uint8, write_image
    from mmif.layout import list_pairs

    pairs = list_pairs(data, "test")
    sources = [(p.stem, to_tensor(read_image(p.ir)), to_tensor(read_image(p.vis))) for p in pairs]
    for i in range(n):
        w = i / max(n - 1, 1)
        method = create_method("weighted", {"weight_ir": w})
        for stem, ir, vis in sources:
            write_image(root / f"weighted_{w:.4f}" / f"{stem}.png", to_uint8(method.fuse(ir, vis)))


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--methods", type=int, default=40, help="registered methods (default 40)")
    p.add_argument("--profile", choices=("tiny", "default"), default="tiny")
    p.add_argument("--workdir", type=Path, help="keep the copy here (default: a temp folder)")
    args = p.parse_args()

    tmp = None
    if args.workdir is None:
        tmp = tempfile.TemporaryDirectory(prefix="bench-external-")
        args.workdir = Path(tmp.name)
    work = args.workdir / "repo"
    work.mkdir(parents=True)
    copy_repo(work, args.profile)
    rows: list[tuple[str, float, float, str]] = []

    def step(label: str, cmd: list[str], note: str = "") -> str:
        load = os.getloadavg()[0]
        wall, cpu, out = timed(cmd, work)
        rows.append((label, wall, cpu, f"load {load:.1f}" + (f"; {note}" if note else "")))
        print(f"{label}: {wall:.1f} s wall, {cpu:.1f} s CPU (load {load:.1f})", flush=True)
        return out

    step("dvc repro (the study, before registering)", ["dvc", "repro"])
    write_root(args.workdir / "zoo", work / "data" / "prepared", args.methods)
    step(
        f"mmif external add ({args.methods} folders)",
        ["mmif", "external", "add", "--root", "../zoo"],
    )
    out = step("dvc status (stale)", ["dvc", "status"])
    n_stale = sum(1 for line in out.splitlines() if line and not line.startswith(("\t", " ")))
    rows[-1] = (*rows[-1][:3], f"{rows[-1][3]}; {n_stale} stale stages")
    step(f"dvc repro ({args.methods} registered methods)", ["dvc", "repro"])
    step("dvc status (no-op)", ["dvc", "status"])
    step("dvc repro (no-op)", ["dvc", "repro"])
    step("dvc repro -f report", ["dvc", "repro", "-f", "-s", "report"])
    step("mmif external add (again, no change)", ["mmif", "external", "add", "--root", "../zoo"])

    n_study = len(yaml.safe_load((work / "params.yaml").read_text())["methods"])
    print(
        f"\n{cpu_description()}; profile {args.profile}; "
        f"{args.methods} registered + {n_study} methods of params.yaml\n"
    )
    print("| step | wall s | CPU s | note |\n|:--|--:|--:|:--|")
    for label, wall, cpu, note in rows:
        print(f"| {label} | {wall:.1f} | {cpu:.1f} | {note} |")
    html = work / "results" / "report" / "report.html"
    if html.is_file():
        print(f"\nreport.html: {html.stat().st_size / 2**20:.1f} MiB")
    if tmp is not None:
        tmp.cleanup()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
