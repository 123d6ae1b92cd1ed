"""Train one downstream task for several seeds: one after another, or side by side.

The small detectors and segmenters of the default study keep about one CPU core busy whatever
torch's thread count (measured on the 2-core machine: a YOLOv8n epoch at 160 px takes the same
time with 1 or 2 threads, and two runs side by side each take as long as one run alone). So on
the CPU the seeds of one method train in parallel worker processes (`mmif detect|segment
--seeds S --jobs 1`), each limited to its share of the cores. On a GPU the seeds run one after
another in this process (they would only compete for the one device).

Each worker writes `<out>/seed_<S>/` as a single-seed run does, and its console output to
`<out>/logs/seed_<S>.log`; a failed worker stops the others and its log tail is shown.
"""

from __future__ import annotations

import argparse
import logging
import os
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from mmif.errors import WorkerFailed
from mmif.logging_utils import progress_bar

log = logging.getLogger(__name__)

#: lines of a failed worker's log repeated in the error
LOG_TAIL = 40


def available_cpus() -> int:
    """CPU cores this process may run on (the affinity mask where the OS has one)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # macOS, Windows
        return max(1, os.cpu_count() or 1)


@dataclass(frozen=True)
class JobPlan:
    """How the seeds of one method run: `processes` at once, each with `threads` torch threads."""

    processes: int
    threads: int

    @property
    def parallel(self) -> bool:
        return self.processes > 1


def plan_jobs(jobs: int | str, n_seeds: int, on_cuda: bool, cpus: int | None = None) -> JobPlan:
    """Resolve the `jobs` setting of params.yaml ("auto" or a count) for `n_seeds` seeds.

    "auto": every seed at once on the CPU (cores shared out, at least one thread each); one at a
    time on CUDA. Under torchrun (WORLD_SIZE > 1) a process never spawns workers of its own.
    """
    cpus = cpus or available_cpus()
    if n_seeds <= 1 or int(os.environ.get("WORLD_SIZE", "1")) > 1:
        return JobPlan(1, cpus)
    if jobs == "auto":
        processes = 1 if on_cuda else n_seeds
    else:
        processes = min(int(jobs), n_seeds)
    if processes <= 1:
        return JobPlan(1, cpus)
    return JobPlan(processes, max(1, cpus // processes))


#: (option, argument attribute) passed on to a worker when the argument is set
WORKER_OPTIONS = (
    ("--method", "method"),
    ("--data", "data"),
    ("--fused", "fused"),
    ("--base", "base"),
    ("--out", "out"),
    ("--params", "params"),
    ("--device", "device"),
)


def worker_command(
    task: str, args: argparse.Namespace, seed: int, out: Path | None = None
) -> list[str]:
    """The `mmif <task>` command line that trains one seed into `out` (default `args.out`): a
    folder the parent owns, written into directly (`--seed-worker`).

    task: the subcommand (detect, segment, detect-base, segment-base); the options of `args`
    named in WORKER_OPTIONS are passed on when set. The worker imports the parent's own copy of
    the code (not whatever `mmif` the working directory or the path would find first).
    """
    import mmif

    root = str(Path(mmif.__file__).resolve().parents[1])
    boot = f"import sys; sys.path.insert(0, {root!r}); from mmif.cli import main; sys.exit(main())"
    cmd = [sys.executable, "-c", boot, task]
    if getattr(args, "verbose", False):
        cmd.append("--verbose")
    for option, attr in WORKER_OPTIONS:
        value = out if attr == "out" and out is not None else getattr(args, attr, None)
        if value is not None and value != "":
            cmd += [option, str(value)]
    cmd += ["--seeds", str(seed), "--jobs", "1", "--seed-worker"]
    return cmd


def _tail(path: Path, n: int = LOG_TAIL) -> str:
    try:
        lines = path.read_text(errors="replace").splitlines()
    except OSError:
        return "(no log)"
    # progress bars redraw with carriage returns; keep each line's last state
    return "\n".join(line.rsplit("\r", 1)[-1] for line in lines[-n:])


def run_in_workers(
    task: str,
    args: argparse.Namespace,
    seeds: Sequence[int],
    plan: JobPlan,
    out: Path | None = None,
    logs: Path | None = None,
) -> None:
    """Train every seed in its own `mmif` process, `plan.processes` at a time.

    Seed S goes to `out/seed_S/` (default `args.out`), its console output to `logs/seed_S.log`
    (default `out/logs`). Raises WorkerFailed (a RuntimeError) naming the seed and its log
    (with the log's tail) when a worker fails; the other workers are stopped.
    """
    out = Path(args.out if out is None else out)
    logs = Path(out / "logs" if logs is None else logs)
    logs.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ)
    threads = str(plan.threads)
    # torch reads OMP_NUM_THREADS at import; detection.offline passes the count on to ultralytics
    env.update(OMP_NUM_THREADS=threads, MKL_NUM_THREADS=threads, MMIF_TORCH_THREADS=threads)
    # ultralytics loads a local detect.model .pt with weights_only=True (README, security)
    env["ULTRALYTICS_SAFE_LOAD"] = "1"
    what = getattr(args, "method", None) or "shared model"
    log.info(
        "%s %s: %d seeds in %d parallel processes, %d torch thread(s) each; logs in %s",
        task,
        what,
        len(seeds),
        plan.processes,
        plan.threads,
        logs,
    )
    pending = list(seeds)
    running: dict[int, tuple[subprocess.Popen, Path, float, object]] = {}
    bar = progress_bar(total=len(seeds), desc=f"{task} {what} seeds", unit="seed")
    try:
        while pending or running:
            while pending and len(running) < plan.processes:
                seed = pending.pop(0)
                log_path = logs / f"seed_{seed}.log"
                handle = log_path.open("w")
                proc = subprocess.Popen(
                    worker_command(task, args, seed, out),
                    stdout=handle,
                    stderr=subprocess.STDOUT,
                    env=env,
                )
                running[seed] = (proc, log_path, time.perf_counter(), handle)
            time.sleep(0.2)
            for seed, (proc, log_path, started, handle) in list(running.items()):
                code = proc.poll()
                if code is None:
                    continue
                handle.close()
                del running[seed]
                if code != 0:
                    raise WorkerFailed(
                        f"{task} {what} seed {seed} failed (exit code {code}); "
                        f"its log is {log_path}, last lines:\n{_tail(log_path)}"
                    )
                log.info(
                    "%s %s seed %d finished in %.0f s",
                    task,
                    what,
                    seed,
                    time.perf_counter() - started,
                )
                bar.update(1)
    finally:
        bar.close()
        for proc, _, _, _ in running.values():
            proc.terminate()
        for proc, _, _, handle in running.values():
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
            handle.close()
