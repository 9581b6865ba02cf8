"""The fault and bad-input campaign (issue 14 item 6): ``python tools/fault_bench.py [--quick]``.

1. ``kill -9`` at random points of tiny CPU runs (data preparation, pretraining, fine-tuning), then
   ``--resume auto``: the final weights must equal an uninterrupted run's bit for bit, and no file a
   reader would take may be partial (:mod:`.kills`).
2. Bad inputs made from small copies of ``../shared/data``, each against the real ``pixvox`` command
   that reads it (:mod:`.cases`).
3. NaN losses and empty batches through the trainer's testing hook, where it exists (:mod:`.nonfinite`).

Writes ``docs/reliability.json`` (keys ``kill_points``, ``kill_points_identical``,
``bad_inputs_tried``, ``bad_inputs_clean``, ``partial_outputs_found``, per-case detail, the machine
load and the command) and ``docs/reliability_campaign.md``, atomically. Exit status 1 when a kill
point differs, a partial output is found or a bad input is not clean.
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from pixvox.bench.faults import kills
from pixvox.bench.faults.cases import CASES, Context
from pixvox.bench.faults.inputs import icl_sequence
from pixvox.bench.faults.judge import run_case
from pixvox.bench.faults.nonfinite import run_nonfinite_cases
from pixvox.bench.faults.procs import pixvox
from pixvox.bench.faults.report import write_markdown
from pixvox.bench.faults.runs import REPO, finetune_args, prepare_args, pretrain_args
from pixvox.io.atomic import atomic_write_json

#: (prepare kills, pretraining kills, fine-tuning kills, steps, checkpoint every)
SIZES = {"quick": (2, 2, 2, 8, 2), "full": (4, 10, 10, 16, 2)}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="tools/fault_bench.py", description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="fewer kill points (2 + 2 + 2); every bad input")
    p.add_argument(
        "--kills",
        type=int,
        nargs=3,
        metavar=("PREP", "PRETRAIN", "FINETUNE"),
        help="kill points per workload",
    )
    p.add_argument("--cases", default="", help="only bad-input cases whose input or reader holds this text")
    p.add_argument("--no-bad-inputs", action="store_true")
    p.add_argument("--seed", type=int, default=0, help="seed of the kill points")
    p.add_argument("--json", type=Path, default=REPO / "docs/reliability.json")
    p.add_argument("--md", type=Path, default=REPO / "docs/reliability_campaign.md")
    p.add_argument(
        "--work", type=Path, default=None, help="scratch folder (default: a temporary one, removed)"
    )
    p.add_argument(
        "--shared-data",
        type=Path,
        default=Path(os.environ.get("PIXVOX_SHARED_DATA", REPO.parent / "shared/data")),
    )
    return p.parse_args(argv)


def _workloads(work: Path, steps: int, every: int) -> dict[str, kills.Workload]:
    data, data_ref = work / "data", work / "data_ref"
    runs, refs = work / "runs", work / "refs"
    return {
        "prepare": kills.Workload("prepare", prepare_args(data), data, data_ref, "*", kills.DATA_DELAY, 60, None),
        "pretrain": kills.Workload(
            "pretrain", pretrain_args(data_ref / "fusions", runs, "pretrain", steps, every), runs / "pretrain",
            refs / "pretrain", "step_*.pt", kills.CHECKPOINT_DELAY, steps // every, "metrics.jsonl",
        ),
        "finetune": kills.Workload(
            "finetune", finetune_args(data_ref / "clouds", refs / "pretrain", runs, "finetune", steps, every),
            runs / "finetune", refs / "finetune", "step_*.pt", kills.CHECKPOINT_DELAY, steps // every, "metrics.jsonl",
        ),
    }  # fmt: skip


def kill_campaign(
    work: Path, counts: tuple[int, int, int], steps: int, every: int, seed: int, log
) -> tuple[list, dict]:
    (work / "runs").mkdir(parents=True, exist_ok=True)
    (work / "refs").mkdir(parents=True, exist_ok=True)
    ws = _workloads(work, steps, every)
    rng = np.random.default_rng(seed)
    trials: list[dict[str, Any]] = []
    refs: dict[str, float] = {}
    for name, n in zip(("prepare", "pretrain", "finetune"), counts):
        w = ws[name]
        r = kills.run_reference(w, work)
        refs[name] = round(r.seconds, 1)
        log(f"{name}: reference run {r.seconds:.1f} s; {n} kill points")
        trials += kills.run_trials(w, n, work, rng, log)
    return trials, refs


def summarize(
    trials: list, cases: list, nonfinite: list, args: argparse.Namespace, seconds: float, refs: dict
) -> dict[str, Any]:
    tried = [c for c in cases if c.get("clean") is not None]
    partial = sum(len(t["after_kill"]["partial"]) for t in trials) + sum(
        len(c.get("partial_outputs", [])) for c in tried
    )
    return {
        "kill_points": len(trials),
        "kill_points_identical": sum(t["final_identical"] for t in trials),
        "bad_inputs_tried": len(tried),
        "bad_inputs_clean": sum(bool(c["clean"]) for c in tried),
        "partial_outputs_found": partial,
        "nonfinite_cases": nonfinite,
        "kill_points_by_workload": {w: sum(t["workload"] == w for t in trials) for w in ("prepare", "pretrain", "finetune")},
        "kill_points_in_atomic_writes": sum("atomic write" in t["phase"] for t in trials),
        "reference_run_seconds": refs,
        "kills": trials,
        "bad_inputs": cases,
        "settings": {
            "threads": "OMP_NUM_THREADS=1, train.cpu_threads=1", "data_workers": 0, "device": "cpu",
            "write_delay_hook": f"PIXVOX_FAULT_WRITE_DELAY ({kills.CHECKPOINT_DELAY} s per checkpoint, "
            f"{kills.DATA_DELAY} s per data file, write kills only)", "seed": args.seed,
        },
        "command": " ".join(["python tools/fault_bench.py", *args.argv]),
        "seconds": round(seconds, 1),
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "load_average_end": [round(x, 2) for x in os.getloadavg()]},
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
    }  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)
    t0 = time.perf_counter()
    load_start = [round(x, 2) for x in os.getloadavg()]
    if not args.shared_data.is_dir():
        print(
            f"fault_bench: the real data folder {args.shared_data} is missing (set PIXVOX_SHARED_DATA)",
            file=sys.stderr,
        )
        return 2
    size = SIZES["quick" if args.quick else "full"]
    counts = tuple(args.kills) if args.kills else size[:3]
    owned = args.work is None
    work = Path(tempfile.mkdtemp(prefix="pixvox_faults_")) if owned else args.work
    work.mkdir(parents=True, exist_ok=True)

    def log(msg: str) -> None:
        print(f"[{time.perf_counter() - t0:6.0f} s] {msg}", flush=True)

    try:
        trials, refs = kill_campaign(work, counts, size[3], size[4], args.seed, log)
        ctx = Context(args.shared_data, work)
        if (work / "refs" / "pretrain").is_dir():
            ctx.refs.update(
                pretrain=work / "refs/pretrain",
                fusions=work / "data_ref/fusions",
                clouds=work / "data_ref/clouds",
            )
        cases: list[dict[str, Any]] = []
        if not args.no_bad_inputs:
            seq = icl_sequence(args.shared_data, work / "icl_good")
            pixvox(["prep", "sequence", "--input", str(seq), "--out", str(work / "icl_frames")], work)
            ctx.refs["frames"] = work / "icl_frames"
            chosen = [c for c in CASES if args.cases in c.input_class or args.cases in c.reader]
            for i, case in enumerate(chosen):
                cases.append(run_case(case, ctx, i))
                c = cases[-1]
                log(
                    f"  bad input {case.input_class!r} -> {case.reader}: {c['outcome']}{'' if c['clean'] in (True, None) else '  NOT CLEAN'}"
                )
        nonfinite = run_nonfinite_cases(ctx.refs["fusions"], work) if "fusions" in ctx.refs else []
        for c in nonfinite:
            log(f"  {c['input']}: {c['outcome']}")
    finally:
        if owned:
            shutil.rmtree(work, ignore_errors=True)
    doc = summarize(trials, cases, nonfinite, args, time.perf_counter() - t0, refs)
    doc["machine"]["load_average_start"] = load_start
    own, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    # CPU seconds of the campaign and its pixvox processes: about its wall time on an idle machine
    # (the processes run one after another), whatever the load while it ran
    doc["cpu_seconds"] = round(own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime, 1)
    atomic_write_json(args.json, doc)
    write_markdown(doc, args.md)
    log(
        f"kill points {doc['kill_points']} ({doc['kill_points_identical']} identical, "
        f"{doc['kill_points_in_atomic_writes']} inside atomic writes) | bad inputs {doc['bad_inputs_clean']}/"
        f"{doc['bad_inputs_tried']} clean | partial outputs {doc['partial_outputs_found']} | wrote {args.json}, {args.md}"
    )
    ok = doc["kill_points_identical"] == doc["kill_points"] and not doc["partial_outputs_found"]
    ok = ok and doc["bad_inputs_clean"] == doc["bad_inputs_tried"]
    ok = ok and all(c["clean"] in (True, None) for c in nonfinite)
    return 0 if ok else 1
