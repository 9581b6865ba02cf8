#!/usr/bin/env python
"""Pretraining step time with pixvox's thread policy vs torch's default thread count, side by side.

Usage: python tools/bench_threads.py [CONFIG] [key=value ...] [--pairs 5] [--steps 40] [--json PATH]

Runs the job (default: the Quickstart) in pairs of fresh processes, alternating which goes first:
``policy`` leaves OMP_NUM_THREADS unset, so pixvox chooses (pixvox.engine.threads); ``default``
sets it to the count torch picks by itself in a fresh process, i.e. what a job used before pixvox
chose. The step time of a run is the mean ``s_per_step`` of its metrics rows after the first
(warm-up) window. Prints a table and writes JSON with every run, the per-pair ratio default/policy,
its median and a 95% t-interval of the geometric mean ratio, and the load average before and after.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def torch_default_threads() -> int:
    env = {k: v for k, v in os.environ.items() if k != "OMP_NUM_THREADS"}
    code = "import torch; print(torch.get_num_threads())"
    return int(
        subprocess.run(
            [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
        ).stdout
    )


def run_once(
    config: str, overrides: list[str], out: Path, name: str, steps: int, log_every: int, threads: int | None
) -> dict:
    env = {k: v for k, v in os.environ.items() if k != "OMP_NUM_THREADS"}
    if threads is not None:
        env["OMP_NUM_THREADS"] = str(threads)
    args = [
        sys.executable, "-m", "pixvox", "pretrain", config, *overrides,
        f"experiment.name={name}", f"experiment.output_root={out}", f"train.max_steps={steps}",
        f"train.log_every={log_every}", f"train.checkpoint_every={steps}", "logging.wandb=disabled",
        "logging.progress_bar=false", "--resume", "none",
    ]  # fmt: skip
    t0 = time.perf_counter()
    proc = subprocess.run(args, env=env, cwd=REPO, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(
            f"run {name} failed ({proc.returncode}):\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}"
        )
    line = next((ln for ln in proc.stdout.splitlines() if "compute threads:" in ln), "")
    rows = [json.loads(ln) for ln in (out / name / "metrics.jsonl").read_text().splitlines() if ln.strip()]
    per_step = [r["s_per_step"] for r in rows if "s_per_step" in r][1:]  # drop the warm-up window
    return {
        "name": name,
        "omp_num_threads": threads,
        "threads_line": line.split("compute threads:", 1)[-1].strip(),
        "s_per_step": statistics.fmean(per_step),
        "windows": per_step,
        "wall_seconds": round(wall, 1),
    }


def t_interval(values: list[float]) -> tuple[float, float]:
    from scipy import stats

    n = len(values)
    if n < 2:
        return (float("nan"), float("nan"))
    m, s = statistics.fmean(values), statistics.stdev(values)
    h = stats.t.ppf(0.975, n - 1) * s / math.sqrt(n)
    return m - h, m + h


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("config", nargs="?", default="configs/pretrain/quickstart.yaml")
    p.add_argument("overrides", nargs="*")
    p.add_argument("--pairs", type=int, default=5)
    p.add_argument("--steps", type=int, default=40, help="steps per run")
    p.add_argument("--log-every", type=int, default=10, help="steps per timing window (the first is warm-up)")
    p.add_argument("--json", default=None)
    a = p.parse_intermixed_args()
    default_threads = torch_default_threads()
    subprocess.run(
        [sys.executable, "-m", "pixvox", "pretrain", "--prepare-data", a.config, *a.overrides],
        cwd=REPO,
        check=True,
    )
    load_before = os.getloadavg()
    runs, ratios = [], []
    with tempfile.TemporaryDirectory(prefix="pixvox_bench_threads_") as tmp:
        for i in range(a.pairs):
            order = [("policy", None), ("default", default_threads)]
            if i % 2:
                order.reverse()
            pair = {}
            for kind, threads in order:
                r = run_once(a.config, a.overrides, Path(tmp), f"{kind}{i}", a.steps, a.log_every, threads)
                r["kind"], r["pair"] = kind, i
                runs.append(r)
                pair[kind] = r["s_per_step"]
                print(f"pair {i} {kind:<8} {r['s_per_step']:.3f} s/step  ({r['threads_line']})", flush=True)
            ratios.append(pair["default"] / pair["policy"])
    load_after = os.getloadavg()
    lo, hi = t_interval([math.log(x) for x in ratios])
    result = {
        "config": a.config,
        "overrides": a.overrides,
        "steps_per_run": a.steps,
        "log_every": a.log_every,
        "torch_default_threads": default_threads,
        "policy": next(r["threads_line"] for r in runs if r["kind"] == "policy"),
        "runs": runs,
        "ratio_default_over_policy": ratios,
        "ratio_median": statistics.median(ratios),
        "ratio_geomean_ci95": [math.exp(lo), math.exp(hi)],
        "load_average_before": load_before,
        "load_average_after": load_after,
        "cores": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "date": time.strftime("%Y-%m-%d %H:%M"),
    }
    pol = [r["s_per_step"] for r in runs if r["kind"] == "policy"]
    dflt = [r["s_per_step"] for r in runs if r["kind"] == "default"]
    print(f"\n{'':<34}{'median s/step':>14}{'min':>8}{'max':>8}")
    for label, xs in (
        (f"policy ({result['policy'].split()[0]} threads)", pol),
        (f"default ({default_threads} threads)", dflt),
    ):
        print(f"{label:<34}{statistics.median(xs):>14.3f}{min(xs):>8.3f}{max(xs):>8.3f}")
    print(
        f"default/policy per pair: median {result['ratio_median']:.2f}, 95% CI of the geometric mean "
        f"{math.exp(lo):.2f}-{math.exp(hi):.2f} | load average {load_before[0]:.1f} before, {load_after[0]:.1f} after"
    )
    if a.json:
        from pixvox.io.atomic import atomic_write_json

        atomic_write_json(Path(a.json), result)


if __name__ == "__main__":
    main()
