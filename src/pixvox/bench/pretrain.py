"""Time the real pretraining job step by step, split into named stages.

    python tools/bench_pretrain.py [CONFIG] [key=value ...] [--steps N] [--warmup N] [--quick] [--json PATH]

It runs the pretraining job itself (:func:`pixvox.pretrain.run.main`, with its DataLoader workers,
trainer, optimizer and schedule) for ``warmup + steps`` steps into a temporary run folder, with a
:class:`pixvox.engine.timing.StageRecorder` active. The stages come from the marks in the real code
(``pretrain/step.py``: transfer, forward with student_forward and teacher_forward inside it,
then for every objective of ``loss.terms`` pairs, with the objective's matching inside, and loss) and from torch's global optimizer-step hooks (optimizer); the training loop
itself is not changed. A step runs from the end of one optimizer step to the end of the next; the
time between the step function's return and the optimizer step is ``backward`` (zero_grad,
loss.backward and gradient clipping), and the time before the step function starts is the loop's:
``data_wait`` (the trainer's own accounting, read from the run's metrics.jsonl, logged every step
here) and ``loop`` (scheduler, logging). Should the trainer mark its own stages (e.g.
``timing.stage("backward")``), they replace these gaps with no change here.

Defaults: the Quickstart (configs/pretrain/quickstart.yaml), 2 warm-up steps and 10 timed ones
(each step is one repeat: the table shows medians with the min-max spread). ``--quick``: 1 + 3.
The data must exist (``python tools/pretrain.py --prepare-data CONFIG`` makes them;
tools/bench_pretrain.py does that first).

JSON (written atomically): ``step_seconds`` (median), ``data_wait_fraction`` (median over steps of
data wait / step), ``stages`` (seconds per stage: median, min, max), ``frames_per_second``,
``projected_run_seconds`` (the config's train.max_steps at the median step time), ``threads``,
``device``, ``load_average``, ``peak_gpu_memory_gib``.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import shutil
import statistics
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from pixvox.engine import timing
from pixvox.engine.threads import plan_threads
from pixvox.io.atomic import atomic_write_json

DEFAULT_CONFIG = "configs/pretrain/quickstart.yaml"
#: Report order; stages not listed here (new marks) follow in the order they appear.
STAGE_ORDER = (
    "data_wait",
    "loop",
    "transfer",
    "prepare",
    "student_forward",
    "teacher_forward",
    "forward",
    "matching",
    "pairs",
    "loss",
    "backward",
    "optimizer",
    "untimed",
)
LABELS = {
    "data_wait": "data wait (trainer's accounting)",
    "loop": "loop (scheduler, logging)",
    "transfer": "transfer to device",
    "prepare": "prepare (objectives: frozen teacher, targets, masking)",
    "student_forward": "student forward (sparse U-Net)",
    "teacher_forward": "teacher forward (2D)",
    "forward": "forward, outside both networks",
    "matching": "matching (pixel-voxel, view-view)",
    "pairs": "pair sampling (objectives)",
    "loss": "loss (objectives)",
    "backward": "backward (+ zero_grad, clipping)",
    "optimizer": "optimizer step",
    "untimed": "untimed",
}


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="bench_pretrain", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument(
        "config", nargs="?", default=DEFAULT_CONFIG, help=f"pretraining YAML (default {DEFAULT_CONFIG})"
    )
    p.add_argument("overrides", nargs="*", help="key=value config overrides")
    p.add_argument("--steps", type=int, default=None, help="timed steps (default 10, quick 3)")
    p.add_argument("--warmup", type=int, default=None, help="untimed first steps (default 2, quick 1)")
    p.add_argument("--quick", action="store_true", help="1 warm-up + 3 timed steps")
    p.add_argument("--json", type=Path, default=Path("outputs/bench_pretrain.json"), help="JSON output path")
    p.add_argument(
        "--keep-run", type=Path, default=None, help="keep the run folder here instead of a temp dir"
    )
    a = p.parse_args(argv)
    if a.config and "=" in a.config:  # only overrides were given
        a.overrides.insert(0, a.config)
        a.config = DEFAULT_CONFIG
    a.steps = a.steps if a.steps is not None else (3 if a.quick else 10)
    a.warmup = a.warmup if a.warmup is not None else (1 if a.quick else 2)
    if a.steps < 1 or a.warmup < 1:
        p.error(
            f"need --steps >= 1 and --warmup >= 1 (the first step has no start mark), got {a.steps}, {a.warmup}"
        )
    return a


def _spread(values: list[float]) -> dict[str, float]:
    return {"median": statistics.median(values), "min": min(values), "max": max(values)}


def split_steps(
    records: Sequence[timing.StageRecord], optimizer: str = "optimizer"
) -> list[dict[str, float]]:
    """Per step, seconds by stage (self times), from the records of a run.

    Step k runs from the end of top-level optimizer step k-1 to the end of step k; the first step has
    no start and is dropped. Untimed gaps go to ``loop`` (before the first stage of the step),
    ``backward`` (just before the optimizer) or ``untimed``. Every step's stages sum to its wall time
    (key ``step``).
    """
    ends = [r.end for r in records if r.name == optimizer and r.depth == 0]
    steps = []
    for t0, t1 in zip(ends, ends[1:]):
        inside = sorted((r for r in records if r.start >= t0 and r.end <= t1), key=lambda r: r.start)
        split: dict[str, float] = {"step": t1 - t0}
        for r in inside:
            split[r.name] = split.get(r.name, 0.0) + r.self_seconds
        top = [r for r in inside if r.depth == 0]
        cursor = t0
        for i, r in enumerate(top):
            gap = r.start - cursor
            key = "loop" if i == 0 else ("backward" if r.name == optimizer else "untimed")
            split[key] = split.get(key, 0.0) + gap
            cursor = r.end
        split["untimed"] = split.get("untimed", 0.0) + (t1 - cursor)
        steps.append(split)
    return steps


def add_data_waits(steps: list[dict[str, float]], waits: list[float] | None) -> None:
    """Move each step's data wait (the trainer's accounting) out of its ``loop`` gap, where it lies.

    Nothing changes when the loop marks a ``data_wait`` stage itself or no waits are known.
    """
    if waits is None or any("data_wait" in split for split in steps):
        return
    for split, wait in zip(steps, waits):
        wait = min(wait, split.get("loop", 0.0))
        split["data_wait"], split["loop"] = wait, split.get("loop", 0.0) - wait


def _data_waits(metrics_path: Path, count: int) -> list[float] | None:
    """Seconds each of the last ``count`` steps waited for data, from the trainer's metrics.jsonl."""
    if not metrics_path.is_file():
        return None
    rows = [json.loads(line) for line in metrics_path.read_text().splitlines() if line.strip()]
    rows = [r for r in rows if "data_wait" in r and "s_per_step" in r]
    if len(rows) < count:
        return None
    return [r["data_wait"] * r["s_per_step"] for r in rows[-count:]]


def _print_table(result: dict[str, Any]) -> None:
    stages, step = result["stages"], result["step_seconds"]
    header = f"{'stage':<36}{'median s':>10}{'min':>9}{'max':>9}{'share':>8}"
    print(header)
    print("-" * len(header))
    for name, s in stages.items():
        print(
            f"{LABELS.get(name, name):<36}{s['median']:>10.4f}{s['min']:>9.4f}{s['max']:>9.4f}"
            f"{s['median'] / step:>8.1%}"
        )
    print("-" * len(header))
    sp = result["step_seconds_spread"]
    print(f"{'step (wall)':<36}{step:>10.4f}{sp['min']:>9.4f}{sp['max']:>9.4f}")
    dw = result["data_wait_fraction"]
    print(
        f"\n{result['steps']} timed steps after {result['warmup']} warm-up, {result['threads']} torch thread(s), "
        f"{result['num_workers']} loader worker(s) on {result['device']}: {step:.3f} s/step, "
        f"{result['frames_per_second']:.2f} frames/s, data wait "
        + ("n/a" if dw is None else f"{dw:.1%} of the step")
        + f"; train.max_steps={result['max_steps']} would take {result['projected_run_seconds'] / 60:.1f} min"
    )


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Run the benchmark, print its table, write the JSON; returns the JSON's content."""
    from pixvox.config import PretrainConfig, load_config
    from pixvox.pretrain import run as pretrain_run

    a = parse_args(argv)
    cfg = load_config(PretrainConfig, a.config, a.overrides)
    index = Path(cfg.data.root) / "index.json"
    if not index.is_file():
        raise SystemExit(
            f"{index} not found: prepare the data first with `python tools/pretrain.py --prepare-data "
            f"{a.config} {' '.join(a.overrides)}` (tools/bench_pretrain.py does this for you)"
        )
    run_root = a.keep_run or Path(tempfile.mkdtemp(prefix="pixvox_bench_pretrain_"))
    name = "bench_pretrain"
    total = a.warmup + a.steps
    job_overrides = [
        *a.overrides,
        f"train.max_steps={total}",
        "train.log_every=1",
        f"train.checkpoint_every={total}",
        f"experiment.output_root={run_root}",
        f"experiment.name={name}",
        "logging.progress_bar=false",
        "logging.wandb=disabled",
    ]
    load_before = os.getloadavg()
    cuda = torch.cuda.is_available() and cfg.train.device != "cpu"
    if cuda:
        torch.cuda.reset_peak_memory_stats()
    recorder = timing.StageRecorder(sync_cuda=cuda)
    try:
        with recorder, timing.optimizer_stage():
            summary = pretrain_run.main([a.config, *job_overrides])
        steps = split_steps(recorder.records)[a.warmup - 1 :]
        waits = _data_waits(run_root / name / "metrics.jsonl", len(steps))
    finally:
        if a.keep_run is None:
            shutil.rmtree(run_root, ignore_errors=True)
    if len(steps) != a.steps:
        raise RuntimeError(f"expected {a.steps} timed steps, the recorder saw {len(steps)}")
    add_data_waits(steps, waits)
    names = [n for n in STAGE_ORDER if any(n in s for s in steps)]
    names += [n for s in steps for n in s if n not in names and n != "step"]
    names = list(dict.fromkeys(names))
    step_s = [s["step"] for s in steps]
    # the job's own choice (it sets torch's thread count for the run and restores it after)
    threads = plan_threads(cfg.train.num_workers, cfg.train.cpu_threads)
    median_step = statistics.median(step_s)
    result: dict[str, Any] = {
        "config": a.config,
        "overrides": list(a.overrides),
        "device": "cuda: " + torch.cuda.get_device_name() if cuda else f"cpu: {os.cpu_count()} logical CPUs",
        "threads": threads.threads,
        "threads_rule": threads.describe(),
        "omp_num_threads_env": os.environ.get("OMP_NUM_THREADS"),
        "num_workers": cfg.train.num_workers,
        "batch_size": cfg.train.batch_size,
        "steps": a.steps,
        "warmup": a.warmup,
        "step_seconds": median_step,
        "step_seconds_spread": _spread(step_s),
        "data_wait_fraction": statistics.median(s["data_wait"] / s["step"] for s in steps)
        if all("data_wait" in s for s in steps)
        else None,
        "stages": {n: _spread([s.get(n, 0.0) for s in steps]) for n in names},
        "frames_per_second": cfg.train.batch_size / median_step,
        "max_steps": cfg.train.max_steps,
        "projected_run_seconds": cfg.train.max_steps * median_step,
        "peak_gpu_memory_gib": torch.cuda.max_memory_allocated() / 2**30 if cuda else None,
        "final_loss": summary.get("loss"),
        "load_average": {"before": list(load_before), "after": list(os.getloadavg())},
        "torch": torch.__version__,
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    }
    _print_table(result)
    atomic_write_json(a.json, result)
    print(f"wrote {a.json}")
    return result
