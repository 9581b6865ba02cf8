"""How long a launch takes to start training: ``python tools/bench_launch.py [--repeats N] [--json PATH]``.

``--max-steps 300`` (the Quickstart's budget) times whole Quickstarts the same way: ``exit`` is then
the wall time of ``bash tools/pretrain.sh`` from the command to its end (issue 16's 4-minute target).

Issue 17's measure: from the command to the first training step of a *second* Quickstart launch (the
environment set up, the data prepared). Each repeat runs ``bash tools/pretrain.sh`` with a one-step
budget into a scratch run folder (``experiment.name=bench_launch``, ``--resume none``) and timestamps
the output lines as they arrive: ``ready`` is the trainer's ``training: steps 1-1`` line (logged when
the loop starts, after the data, the networks and the optimizer are built), ``run dir`` the job's first
line. One unmeasured launch first makes sure the data exist. The table shows the median with the
min-max spread; the JSON (written atomically) holds every repeat and the load average.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import statistics
import subprocess
import time
from pathlib import Path

from pixvox.io.atomic import atomic_write_json

MARKS = {"run_dir": "INFO pixvox: run dir ", "ready": "INFO pixvox: training: steps "}


def time_launch(repo: Path, command: list[str], timeout: float = 600.0) -> dict[str, float | None]:
    """Seconds from the start of ``command`` (run in ``repo``) to each mark's first line and to its exit."""
    seen: dict[str, float | None] = dict.fromkeys(MARKS)
    start = time.perf_counter()
    proc = subprocess.Popen(
        command, cwd=repo, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1
    )
    assert proc.stdout is not None
    for line in proc.stdout:
        now = time.perf_counter() - start
        for key, mark in MARKS.items():
            if seen[key] is None and mark in line:
                seen[key] = now
        if now > timeout:
            proc.kill()
            break
    code = proc.wait()
    if code != 0:
        raise RuntimeError(f"{' '.join(command)} exited with status {code} in {repo}")
    return {**seen, "exit": time.perf_counter() - start}


def quickstart_command(max_steps: int) -> list[str]:
    """The Quickstart into a scratch run folder, ``max_steps`` steps, from a fresh start every time."""
    return [
        "bash",
        "tools/pretrain.sh",
        "experiment.name=bench_launch",
        f"train.max_steps={max_steps}",
        "logging.progress_bar=false",
        "--resume",
        "none",
    ]


def _summary(values: list[float]) -> dict[str, float]:
    return {"median": statistics.median(values), "min": min(values), "max": max(values)}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="tools/bench_launch.py", description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--json", default="outputs/bench_launch.json")
    ap.add_argument("--repo", default=".", help="the checkout whose tools/pretrain.sh is launched")
    ap.add_argument(
        "--max-steps", type=int, default=1, help="training steps per launch (300: the whole Quickstart)"
    )
    args = ap.parse_args(argv)
    repo = Path(args.repo).resolve()
    run_dir = repo / "outputs" / "bench_launch"
    if args.max_steps < 1:
        ap.error("--max-steps must be at least 1")
    command = quickstart_command(args.max_steps)
    # first launch: data prepared, caches warm; not measured
    time_launch(repo, quickstart_command(1))
    rows = []
    for i in range(args.repeats):
        shutil.rmtree(run_dir, ignore_errors=True)
        row = time_launch(repo, command)
        rows.append(row)
        print(f"launch {i + 1}/{args.repeats}: " + ", ".join(f"{k} {v:.2f} s" for k, v in row.items() if v))
    shutil.rmtree(run_dir, ignore_errors=True)
    print(f"\n{'from the command to':32s} {'median s':>9s} {'min':>7s} {'max':>7s}")
    stats = {}
    for key, label in (
        ("run_dir", "the job's first line"),
        ("ready", "training starts"),
        ("exit", f"exit ({args.max_steps} step{'s' if args.max_steps > 1 else ''})"),
    ):
        values = [r[key] for r in rows if r[key] is not None]
        if values:
            stats[key] = _summary(values)
            s = stats[key]
            print(f"{label:32s} {s['median']:9.2f} {s['min']:7.2f} {s['max']:7.2f}")
    load = os.getloadavg()
    print(f"\n{args.repeats} launches of `{' '.join(command)}`; load average {load[0]:.1f}")
    atomic_write_json(
        args.json,
        {
            "command": command,
            "max_steps": args.max_steps,
            "repeats": rows,
            "seconds": stats,
            "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "load_average": load},
        },
    )
    print(f"wrote {args.json}")
    return 0
