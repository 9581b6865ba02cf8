"""``python -m pixvox.selftest``: run every check on the devices present, print the table, write the
JSON report, exit 1 if anything failed.

Checks (``--only`` / ``--skip`` take these names or their groups: versions, sparse, ops, smoke,
ddp, bench):

==================  =========  ================================================================
check               devices    compares
==================  =========  ================================================================
versions            main       Python, torch, CUDA/driver, MinkowskiEngine, pixvox, cuda_ext build
sparse_conv         each       ME conv (k1/k2/k3, stride 1/2) and transposed conv vs dense float64
row_order           each       output rows mapped back to shuffled, duplicated input coordinates
ops.*               each       every cuda_ext op vs pixvox.ops.reference (values and gradients)
pretrain_smoke      main       20 PPKT steps on a synthetic room: finite, falling loss (bf16 on GPU)
ddp_2proc           cpu, cuda  a 2-process torchrun step equals the 1-process step (synced BN)
bench.*             main       the back-projection, pretraining and sparse benchmarks, ``--quick``
==================  =========  ================================================================

"main" is the GPU where one is visible, else the CPU; "each" is the CPU and every selected GPU.
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import shutil
import tempfile
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch

from pixvox.io.atomic import atomic_write_json
from pixvox.selftest.report import (
    FAIL,
    FORMAT,
    PASS,
    SKIP,
    VERSION,
    CheckResult,
    format_table,
    summary_counts,
)

DEFAULT_JSON = "outputs/selftest.json"
GROUPS = ("versions", "sparse", "ops", "smoke", "ddp", "bench")


@dataclass
class Check:
    name: str
    group: str
    device: torch.device
    run: Callable[[torch.device, int, Path], CheckResult]


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m pixvox.selftest",
        description="Check that this install computes correctly on this machine's CPU and GPUs, "
        "print a table and write a JSON report. Exit status 1 if any check fails.",
    )
    p.add_argument(
        "--device",
        choices=["auto", "cpu", "cuda"],
        default="auto",
        help="auto (default): the CPU, plus the GPU where one is visible; cuda: the GPU only "
        "(the 2-process CPU check still runs)",
    )
    p.add_argument(
        "--json", type=Path, default=Path(DEFAULT_JSON), help=f"report path (default {DEFAULT_JSON})"
    )
    p.add_argument("--only", default="", help="comma-separated checks or groups to run (default: all)")
    p.add_argument("--skip", default="", help="comma-separated checks or groups to leave out")
    p.add_argument("--seed", type=int, default=0, help="seed of every random input (default 0)")
    p.add_argument(
        "--workdir",
        type=Path,
        default=None,
        help="folder for the synthetic data and run logs (default: a temporary folder, "
        "removed unless a check fails)",
    )
    p.add_argument(
        "--threads",
        type=int,
        default=None,
        help="CPU threads of every check and child process (default: torch's). On a CPU shared with "
        "other jobs, 1 avoids OpenMP threads waiting on each other",
    )
    p.add_argument("--list", action="store_true", help="list the checks and exit")
    return p.parse_args(argv)


def devices_for(choice: str) -> list[torch.device]:
    if choice == "cpu":
        return [torch.device("cpu")]
    if choice == "cuda":
        if not torch.cuda.is_available():
            raise SystemExit(
                "--device cuda: torch sees no CUDA device (check nvidia-smi and the torch build)"
            )
        return [torch.device("cuda", 0)]
    return [torch.device("cpu")] + ([torch.device("cuda", 0)] if torch.cuda.is_available() else [])


def build_checks(devices: list[torch.device]) -> list[Check]:
    """Every check in run order (cheap correctness first, benchmarks last)."""
    from pixvox.selftest import bench, distributed, ops, smoke, sparse_conv, versions

    main_device = devices[-1]
    checks = [Check("versions", "versions", main_device, lambda d, s, w: versions.check_versions(d, s))]
    for d in devices:
        checks.append(Check("sparse_conv", "sparse", d, lambda d, s, w: sparse_conv.check_sparse_conv(d, s)))
        checks.append(Check("row_order", "sparse", d, lambda d, s, w: sparse_conv.check_row_order(d, s)))
        for name, fn in ops.OP_CHECKS.items():
            checks.append(Check(name, "ops", d, lambda d, s, w, fn=fn: fn(d, s)))
    checks.append(Check("pretrain_smoke", "smoke", main_device, smoke.check_pretrain_smoke))
    ddp_devices = [torch.device("cpu")] + [d for d in devices if d.type == "cuda"]
    for d in ddp_devices:
        checks.append(Check("ddp_2proc", "ddp", d, distributed.check_ddp))
    for name in bench.BENCHMARKS:
        checks.append(
            Check(name, "bench", main_device, lambda d, s, w, name=name: bench.run_benchmark(name, d, w))
        )
    return checks


def select(checks: list[Check], only: str, skip: str) -> list[Check]:
    def matches(c: Check, names: set[str]) -> bool:
        return c.name in names or c.group in names

    known = {c.name for c in checks} | set(GROUPS)
    for option, value in (("--only", only), ("--skip", skip)):
        unknown = sorted({n for n in value.split(",") if n} - known)
        if unknown:
            raise SystemExit(f"{option}: unknown check(s) {unknown}; choose from {sorted(known)}")
    only_set = {n for n in only.split(",") if n}
    skip_set = {n for n in skip.split(",") if n}
    return [c for c in checks if (not only_set or matches(c, only_set)) and not matches(c, skip_set)]


def run_check(check: Check, seed: int, workdir: Path) -> CheckResult:
    """Run one check, timing it; an exception is a FAIL that names it (traceback in the JSON)."""
    t0 = time.perf_counter()
    try:
        result = check.run(check.device, seed, workdir)
    except Exception as err:  # noqa: BLE001 - any error of the install is a finding, not a crash
        result = CheckResult(
            check.name,
            str(check.device),
            FAIL,
            type(err).__name__,
            detail=f"{type(err).__name__}: {err}".strip()[:500],
            data={"traceback": traceback.format_exc()},
        )
    if check.device.type == "cuda":
        torch.cuda.synchronize(check.device)
    result.seconds = time.perf_counter() - t0
    return result


def report(results: list[CheckResult], seconds: float, workdir: Path | None) -> dict:
    from pixvox.selftest.versions import collect

    counts = summary_counts(results)
    return {
        "format": FORMAT,
        "version": VERSION,
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "host": platform.node(),
        "passed": counts[FAIL] == 0,
        "counts": counts,
        "seconds": round(seconds, 1),
        "workdir": str(workdir) if workdir is not None else None,
        "versions": collect(),
        "checks": [r.to_json() for r in results],
    }


def main(argv: Sequence[str] | None = None) -> int:
    """Run the self-test; returns the exit status (0: nothing failed, 1: a check failed)."""
    args = parse_args(argv)
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    if args.threads is not None:
        if args.threads < 1:
            raise SystemExit(f"--threads must be >= 1, got {args.threads}")
        torch.set_num_threads(args.threads)
        os.environ["OMP_NUM_THREADS"] = str(args.threads)  # inherited by the smoke run and torchrun
    checks = select(build_checks(devices_for(args.device)), args.only, args.skip)
    if args.list:
        for c in checks:
            print(f"{c.name:20s} {c.group:9s} {c.device}")
        return 0
    keep = args.workdir is not None
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="pixvox-selftest-"))
    workdir.mkdir(parents=True, exist_ok=True)
    print(f"pixvox selftest: {len(checks)} checks on {', '.join(sorted({str(c.device) for c in checks}))}")
    load, cores = os.getloadavg()[0], os.cpu_count() or 1
    if args.threads is None and load > cores:
        print(
            f"note: load average {load:.1f} on {cores} cores; if the CPU checks crawl, rerun with --threads 1 "
            "(OpenMP threads of a busy CPU wait on each other)"
        )
    t0 = time.perf_counter()
    results = []
    for i, check in enumerate(checks, 1):
        result = run_check(check, args.seed, workdir)
        results.append(result)
        print(
            f"[{i:2d}/{len(checks)}] {result.name} ({result.device}): {result.result} {result.figure} "
            f"({result.seconds:.1f} s)",
            flush=True,
        )
    seconds = time.perf_counter() - t0
    failed = any(r.result == FAIL for r in results)
    if failed:
        keep = True  # the run logs under it explain the failure
    payload = report(results, seconds, workdir if keep else None)
    atomic_write_json(args.json, payload)
    if not keep:
        shutil.rmtree(workdir, ignore_errors=True)
    counts = payload["counts"]
    print()
    print(format_table(results))
    print()
    verdict = FAIL if failed else PASS
    print(
        f"pixvox selftest: {verdict}: {counts[PASS]} passed, {counts[FAIL]} failed, {counts[SKIP]} skipped "
        f"in {seconds:.0f} s; report {args.json}" + (f"; logs in {workdir}" if keep else "")
    )
    return 1 if failed else 0
