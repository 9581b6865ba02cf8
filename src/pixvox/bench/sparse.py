"""How MinkowskiEngine's CPU convolution scales from 1 to 2 threads, on a real ScanNet room.

Workload: the fused ScanNet scan ``scene0011_00`` (Pointcept layout, ~240k points) voxelized at 5 and
2.5 cm, colors as features; one step is building the input SparseTensor (its kernel maps are built
in the step, as in training) and the forward and backward pass of a Res16UNet14S and a Res16UNet34C.
Thread counts alternate run by run (1, 2, 1, 2, ...) so that drift in the machine's speed hits both;
each case reports the median step time per thread count, ``scaling_2_threads`` (median at 1 thread /
median at 2; the target is 1.6 on 2 cores), the spread of the paired ratios, the thread count
actually in effect after the step (MinkowskiEngine 0.5.4 unpatched resets it), and the CPU seconds
each thread spent (Linux), which shows how much of the work a second thread took. Prints a table and
writes JSON (atomically)::

    python tools/bench_sparse.py [--quick] [--json PATH] [--repeats N] [--room DIR]

``--quick`` (selftest): Res16UNet14S at 5 cm on a quarter of the room, 2 repeats.
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

from pixvox.geometry import voxelize
from pixvox.io.atomic import atomic_write_json
from pixvox.models.student.variants import build_student
from pixvox.sparse import ENGINE_PATCHES, ME, batched_coordinates, sparse_tensor

MODELS = ("Res16UNet14S", "Res16UNet34C")
VOXEL_SIZES = (0.05, 0.025)  # metres
THREADS = (1, 2)
ROOM = "scannet_pointcept/scene0011_00"


def load_room(room: Path, quarter: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """``coord.npy`` (float32 metres) and ``color.npy`` (uint8) of a Pointcept-layout scene."""
    for name in ("coord.npy", "color.npy"):
        if not (room / name).is_file():
            raise FileNotFoundError(
                f"{room / name} not found: --room must be a Pointcept-layout ScanNet scene "
                f"(default ../shared/data/{ROOM}; set PIXVOX_SHARED_DATA or pass --room)"
            )
    xyz, rgb = np.load(room / "coord.npy"), np.load(room / "color.npy")
    if quarter:  # the quarter of the room with the smallest x and y
        keep = (xyz[:, 0] <= np.median(xyz[:, 0])) & (xyz[:, 1] <= np.median(xyz[:, 1]))
        xyz, rgb = xyz[keep], rgb[keep]
    return xyz, rgb


def voxel_input(xyz: np.ndarray, rgb: np.ndarray, voxel_size: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Batched int32 coordinates ``[V, 4]`` and float32 mean colors in [-0.5, 0.5] ``[V, 3]``."""
    coords, _, mean = voxelize(xyz, voxel_size, rgb)  # NumPy: int32 coords, float64 mean colors
    assert mean is not None
    return batched_coordinates([torch.from_numpy(coords)]), torch.from_numpy(mean / 255.0 - 0.5).float()


def thread_cpu_seconds() -> dict[int, float]:
    """User + system CPU seconds of every thread of this process (Linux; empty elsewhere)."""
    out: dict[int, float] = {}
    tick = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
    try:
        tasks = os.listdir("/proc/self/task")
    except OSError:
        return out
    for tid in tasks:
        try:
            with open(f"/proc/self/task/{tid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        out[int(tid)] = (int(fields[11]) + int(fields[12])) / tick  # utime, stime
    return out


def step(model: torch.nn.Module, coords: torch.Tensor, feats: torch.Tensor, upstream: torch.Tensor) -> None:
    """One training-like step: a new SparseTensor (kernel maps built in the step), forward, backward."""
    model.zero_grad(set_to_none=True)
    out = model(sparse_tensor(feats, coords))
    (out.F * upstream).sum().backward()


def run_case(model_name: str, coords: torch.Tensor, feats: torch.Tensor, repeats: int, warmup: int) -> dict:
    """Median step seconds at 1 and 2 threads (alternating), paired ratios and per-thread CPU time."""
    torch.manual_seed(0)
    model = build_student(model_name, in_channels=3, out_channels=32).train()
    upstream = torch.randn(coords.shape[0], 32, generator=torch.Generator().manual_seed(1))
    times: dict[int, list[float]] = {t: [] for t in THREADS}
    effective: dict[int, int] = {}
    cpu: dict[int, list[float]] = {t: [] for t in THREADS}
    for i in range(warmup + repeats):
        for t in THREADS:
            torch.set_num_threads(t)
            before = thread_cpu_seconds()
            t0 = time.perf_counter()
            step(model, coords, feats, upstream)
            dt = time.perf_counter() - t0
            after = thread_cpu_seconds()
            effective[t] = torch.get_num_threads()
            if i < warmup:
                continue
            times[t].append(dt)
            per_thread = sorted((after[k] - before.get(k, 0.0) for k in after), reverse=True)
            cpu[t] = [a + b for a, b in zip(cpu[t] or [0.0] * len(per_thread), per_thread)]
    ratios = [a / b for a, b in zip(times[1], times[2])]
    med = {t: statistics.median(v) for t, v in times.items()}
    return {
        "model": model_name,
        "voxels": int(coords.shape[0]),
        "seconds": {
            str(t): {"median": med[t], "min": min(v), "max": max(v), "runs": v} for t, v in times.items()
        },
        "scaling_2_threads": med[1] / med[2],
        "paired_ratio": {"median": statistics.median(ratios), "min": min(ratios), "max": max(ratios)},
        "threads_in_effect_after_step": {str(t): effective[t] for t in THREADS},
        # CPU seconds of the busiest threads over all counted runs (most busy first, top 4)
        "thread_cpu_seconds": {str(t): [round(c, 3) for c in cpu[t][:4]] for t in THREADS},
    }


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    data = os.environ.get("PIXVOX_SHARED_DATA", "../shared/data")
    p.add_argument(
        "--room", type=Path, default=Path(data) / ROOM, help="Pointcept-layout ScanNet scene folder"
    )
    p.add_argument(
        "--json", type=Path, default=Path("outputs/bench/sparse_cpu.json"), help="where to write JSON"
    )
    p.add_argument("--repeats", type=int, default=5, help="counted steps per thread count (default 5)")
    p.add_argument("--warmup", type=int, default=1, help="uncounted steps per thread count first (default 1)")
    p.add_argument("--models", nargs="+", default=list(MODELS), choices=MODELS)
    p.add_argument("--voxel-sizes", nargs="+", type=float, default=list(VOXEL_SIZES), help="metres")
    p.add_argument(
        "--quick", action="store_true", help="Res16UNet14S, 5 cm, a quarter of the room, 2 repeats"
    )
    args = p.parse_args(argv)
    if args.quick:
        args.models, args.voxel_sizes, args.repeats = ["Res16UNet14S"], [0.05], min(args.repeats, 2)
    if args.repeats < 1:
        p.error("--repeats must be at least 1")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        xyz, rgb = load_room(args.room, quarter=args.quick)
    except FileNotFoundError as err:
        print(f"[bench_sparse] error: {err}", file=sys.stderr)
        return 2
    print(
        f"[bench_sparse] {args.room} ({len(xyz)} points) | MinkowskiEngine {ME.__version__} with "
        f"{len(ENGINE_PATCHES)} pixvox patches | torch {torch.__version__} | {os.cpu_count()} CPUs | "
        f"load average {os.getloadavg()[0]:.1f} | OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')}"
    )
    cases = []
    for voxel_size in args.voxel_sizes:
        coords, feats = voxel_input(xyz, rgb, voxel_size)
        for name in args.models:
            print(
                f"[bench_sparse] {name} at {voxel_size * 100:g} cm, {coords.shape[0]} voxels ...", flush=True
            )
            case = run_case(name, coords, feats, args.repeats, args.warmup)
            case["voxel_size_m"] = voxel_size
            cases.append(case)
    header = f"{'model':<14} {'voxel':>6} {'voxels':>8} {'1 thread s':>11} {'2 threads s':>12} {'scaling':>8} {'paired min-max':>15} {'in effect':>10}"
    print(header)
    print("-" * len(header))
    for c in cases:
        s1, s2 = c["seconds"]["1"]["median"], c["seconds"]["2"]["median"]
        eff = c["threads_in_effect_after_step"]
        print(
            f"{c['model']:<14} {c['voxel_size_m'] * 100:>4g}cm {c['voxels']:>8} {s1:>11.3f} {s2:>12.3f} "
            f"{c['scaling_2_threads']:>8.2f} {c['paired_ratio']['min']:>7.2f}-{c['paired_ratio']['max']:<7.2f} "
            f"{eff['1']:>4}/{eff['2']:<5}"
        )
    result = {
        "benchmark": "MinkowskiEngine CPU sparse convolution, forward + backward, 1 vs 2 threads",
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "load_average": os.getloadavg()},
        "torch": torch.__version__,
        "minkowskiengine_patches": list(ENGINE_PATCHES),
        "room": str(args.room),
        "repeats": args.repeats,
        "target_scaling_2_threads": 1.6,
        "cases": cases,
    }
    atomic_write_json(args.json, result)
    print(f"[bench_sparse] wrote {args.json}")
    return 0
