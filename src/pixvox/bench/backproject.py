"""Benchmark pixvox.ops (compiled kernels) against the pure-PyTorch reference, side by side in one run.

    python tools/bench_backproject.py [--quick] [--json PATH] [--threads 1,2] [--repeats N] [--device cpu|cuda]

Workload (:mod:`pixvox.bench.box_room`): 8 depth frames of 480x640 inside a 7 x 5 x 2.8 m box room
whose faces are ~210k voxels at 2.5 cm, 64-channel features. ``--quick``: 2 frames of 240x320, 16
channels, 5 cm voxels (a few seconds).

Every op runs on both sides on the same inputs in one process, after a check that their outputs
agree. Each repeat round times every op on the extension, then on the reference, then a tensor
copy, so the rounds are paired: the speedup and the fraction of copy bandwidth are computed per
round, and the table shows their median over the rounds with the min-max spread. Bytes are the
minimum each op must read and write; the copy counts read + write. Thread counts run one after
another in the same process.

JSON (written atomically): ``speedup_vs_reference`` and ``bandwidth_fraction`` (combined ops
pixel_to_voxel + scatter_mean + gather; the lowest over the thread counts, as the targets must hold
at each), ``by_threads`` (per thread count: per-op medians, spreads, bytes, GB/s), ``workload``,
``device``, ``load_average`` (before and after) and ``torch_thp_alloc`` (whether torch's own
allocations were given transparent huge pages, THP_MEM_ALLOC_ENABLE=1, as the kernels' large
outputs are).
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import statistics
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch

from pixvox import ops
from pixvox.bench.box_room import Workload, make_workload
from pixvox.io.atomic import atomic_write_json
from pixvox.ops import reference as ref

COMBINED = ("pixel_to_voxel", "scatter_mean", "gather")
TARGET_SPEEDUP = 10.0
TARGET_BANDWIDTH_FRACTION = 0.6
FULL = {"frames": 8, "height": 480, "width": 640, "channels": 64, "voxel_size": 0.025}
QUICK = {"frames": 2, "height": 240, "width": 320, "channels": 16, "voxel_size": 0.05}


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="bench_backproject", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument(
        "--quick", action="store_true", help="small workload (2 frames 240x320, 16 channels, 5 cm)"
    )
    p.add_argument(
        "--json", type=Path, default=Path("outputs/bench_backproject.json"), help="JSON output path"
    )
    p.add_argument("--device", default="cpu", choices=["cpu", "cuda"], help="device to benchmark on")
    p.add_argument(
        "--repeats", type=int, default=None, help="paired rounds per thread count (default 7, quick 5)"
    )
    p.add_argument("--seed", type=int, default=0, help="seed of the synthetic scene and features")
    p.add_argument(
        "--threads",
        default=None,
        help="comma-separated CPU thread counts, both sides (default: 1 and torch's default count)",
    )
    a = p.parse_args(argv)
    if a.repeats is not None and a.repeats < 1:
        p.error(f"--repeats must be >= 1, got {a.repeats}")
    try:
        a.threads = [int(t) for t in a.threads.split(",")] if a.threads else None
    except ValueError:
        p.error(f"--threads must be comma-separated integers, got {a.threads!r}")
    if a.threads is not None and min(a.threads) < 1:
        p.error(f"--threads must be >= 1, got {a.threads}")
    return a


def _timer(device: torch.device) -> Callable[[Callable[[], object]], float]:
    def run(fn: Callable[[], object]) -> float:
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        start = time.perf_counter()
        fn()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        return time.perf_counter() - start

    return run


def device_description(device: torch.device) -> str:
    if device.type == "cuda":
        return f"cuda: {torch.cuda.get_device_name(device)}"
    model = platform.processor() or "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"cpu: {model}, {os.cpu_count()} logical CPUs"


def _spread(values: list[float]) -> dict[str, float]:
    return {"median": statistics.median(values), "min": min(values), "max": max(values)}


class _Ops:
    """The timed callables of both sides, on one workload, after checking that their outputs agree."""

    def __init__(self, w: Workload, device: torch.device, seed: int) -> None:
        self.depth, self.K, self.poses, self.fb = (
            t.to(device) for t in (w.depth, w.K, w.poses, w.frame_batch)
        )
        self.coords, self.voxel = w.coords.to(device), w.voxel_size
        self.kwargs = {"frame_batch": self.fb, "depth_max": w.depth_max}
        self.scene, self.ref_scene = ops.VoxelHash(self.coords), ref.ReferenceVoxelHash(self.coords)
        match = self.p2v()
        self.index = match.voxel_index
        self.pixels, self.voxels = int(self.index.shape[0]), int(self.coords.shape[0])
        self.matched = int((self.index >= 0).sum())
        gen = torch.Generator(device=device).manual_seed(seed)
        self.pixel_feats = torch.randn(self.pixels, w.channels, device=device, generator=gen)
        self.voxel_feats = torch.randn(self.voxels, w.channels, device=device, generator=gen)
        f, item, c = self.pixel_feats.element_size(), self.depth.element_size(), w.channels
        p, v = self.pixels, self.voxels
        scatter_bytes = p * c * f + p * 8 + v * c * f + v * 8
        self.table: dict[str, tuple[Callable[[], object], Callable[[], object], int | None]] = {
            "voxel_hash_build": (
                lambda: ops.VoxelHash(self.coords),
                lambda: ref.ReferenceVoxelHash(self.coords),
                None,
            ),
            "pixel_to_voxel": (
                self.p2v,
                self.p2v_ref,
                self.depth.numel() * item + p * (3 * 8 + 8 + 3 * item),
            ),
            "scatter_mean": (lambda: self.scatter("mean"), lambda: self.scatter_ref("mean"), scatter_bytes),
            "scatter_max": (lambda: self.scatter("max"), lambda: self.scatter_ref("max"), scatter_bytes),
            "gather": (
                lambda: ops.gather_from_voxels(self.voxel_feats, self.index),
                lambda: ref.gather_from_voxels_reference(self.voxel_feats, self.index),
                p * 8 + v * c * f + p * c * f,
            ),
        }

    def p2v(self) -> ops.PixelVoxelMatch:
        return ops.pixel_to_voxel(self.depth, self.K, self.poses, self.voxel, self.scene, **self.kwargs)

    def p2v_ref(self) -> tuple[torch.Tensor, ...]:
        return ref.pixel_to_voxel_reference(
            self.depth, self.K, self.poses, self.voxel, self.ref_scene, **self.kwargs
        )

    def scatter(self, reduce: str) -> torch.Tensor:
        return ops.scatter_to_voxels(self.pixel_feats, self.index, self.voxels, reduce).features

    def scatter_ref(self, reduce: str) -> torch.Tensor:
        return ref.scatter_to_voxels_reference(self.pixel_feats, self.index, self.voxels, reduce)[0]

    def check(self) -> None:
        """Refuse to time a wrong result: both sides must agree (exactly where the math allows)."""
        got, want = self.p2v(), self.p2v_ref()
        if not (torch.equal(got.pixel_bvu, want[0]) and torch.equal(got.voxel_index, want[1])):
            raise SystemExit("pixel_to_voxel disagrees with the reference; not benchmarking a wrong result")
        for reduce in ("mean", "max"):
            if not torch.allclose(self.scatter(reduce), self.scatter_ref(reduce), rtol=1e-5, atol=1e-5):
                raise SystemExit(f"scatter {reduce} disagrees with the reference")
        if not torch.equal(self.table["gather"][0](), self.table["gather"][1]()):
            raise SystemExit("gather disagrees with the reference")


def _measure(o: _Ops, device: torch.device, repeats: int, copy_bytes: int) -> dict[str, Any]:
    """Paired rounds at the current thread count: every op on both sides, then a copy."""
    run = _timer(device)
    src = torch.rand(copy_bytes // 4, device=device)
    dst = torch.empty_like(src).fill_(0.0)  # pre-touched: the copy pays no page faults

    def copy() -> None:
        dst.copy_(src)

    o.check()
    for ext_fn, ref_fn, _ in o.table.values():  # warm-up
        run(ext_fn)
        run(ref_fn)
    run(copy)
    times: dict[str, dict[str, list[float]]] = {k: {"ext": [], "ref": []} for k in o.table}
    copy_s: list[float] = []
    for _ in range(repeats):
        for name, (ext_fn, ref_fn, _) in o.table.items():
            times[name]["ext"].append(run(ext_fn))
            times[name]["ref"].append(run(ref_fn))
        copy_s.append(run(copy))

    # One cold call per op: the kernels' large outputs are cached between calls (as they are between
    # the steps of a training loop); this is the cost with fresh, never-touched output memory.
    cold_ms: dict[str, float] = {}
    if device.type == "cpu":
        from pixvox.ops._extension import extension

        for name, (ext_fn, _, _) in o.table.items():
            extension().release_cached_cpu_memory()
            cold_ms[name] = run(ext_fn) * 1e3

    copy_bps = [2 * copy_bytes / s for s in copy_s]
    result: dict[str, Any] = {"threads": torch.get_num_threads(), "ops": {}}
    for name, (_, _, nbytes) in o.table.items():
        ext, rf = times[name]["ext"], times[name]["ref"]
        r: dict[str, Any] = {
            "ext_ms": _spread([t * 1e3 for t in ext]),
            "reference_ms": _spread([t * 1e3 for t in rf]),
            "speedup": _spread([b / a for a, b in zip(ext, rf)]),
            "ext_cold_ms": cold_ms.get(name),
            "bytes": nbytes,
        }
        if nbytes:
            r["ext_gbps"] = nbytes / statistics.median(ext) / 1e9
            r["reference_gbps"] = nbytes / statistics.median(rf) / 1e9
            r["ext_fraction_of_copy"] = _spread([nbytes / a / c for a, c in zip(ext, copy_bps)])
        result["ops"][name] = r
    ext_sum = [sum(times[k]["ext"][i] for k in COMBINED) for i in range(repeats)]
    ref_sum = [sum(times[k]["ref"][i] for k in COMBINED) for i in range(repeats)]
    nbytes = sum(o.table[k][2] or 0 for k in COMBINED)
    result["combined"] = {
        "ops": list(COMBINED),
        "ext_ms": _spread([t * 1e3 for t in ext_sum]),
        "reference_ms": _spread([t * 1e3 for t in ref_sum]),
        "speedup": _spread([b / a for a, b in zip(ext_sum, ref_sum)]),
        "ext_cold_ms": sum(cold_ms[k] for k in COMBINED) if cold_ms else None,
        "bytes": nbytes,
        "ext_gbps": nbytes / statistics.median(ext_sum) / 1e9,
        "fraction_of_copy": _spread([nbytes / a / c for a, c in zip(ext_sum, copy_bps)]),
    }
    result["copy_bandwidth_gbps"] = _spread([b / 1e9 for b in copy_bps])
    return result


def _print_table(r: dict[str, Any]) -> None:
    print(
        f"\n{r['threads']} thread(s); copy bandwidth (read + write) {r['copy_bandwidth_gbps']['median']:.1f} GB/s"
    )
    header = (
        f"{'op':<18}{'ext ms':>9}{'cold ms':>9}{'ref ms':>9}{'speedup':>9}{'(min-max)':>13}"
        f"{'ext GB/s':>10}{'ext/copy':>10}{'(min-max)':>13}"
    )
    print(header)
    print("-" * len(header))

    def row(name: str, x: dict[str, Any], fraction: dict[str, float] | None) -> None:
        s, cold = x["speedup"], x.get("ext_cold_ms")
        line = (
            f"{name:<18}{x['ext_ms']['median']:>9.1f}"
            + (f"{cold:>9.1f}" if cold is not None else f"{'':>9}")
            + f"{x['reference_ms']['median']:>9.1f}"
            f"{s['median']:>8.1f}x{s['min']:>6.1f}-{s['max']:<5.1f}x"
        )
        if fraction is not None:
            line += (
                f"{x['ext_gbps']:>10.2f}{fraction['median']:>10.0%}"
                f"{fraction['min'] * 100:>7.0f}-{fraction['max'] * 100:.0f}%"
            )
        print(line)

    for name, x in r["ops"].items():
        row(name, x, x.get("ext_fraction_of_copy"))
    print("-" * len(header))
    row("combined", r["combined"], r["combined"]["fraction_of_copy"])


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Run the benchmark, print its tables, write the JSON; returns the JSON's content."""
    args = parse_args(argv)
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise SystemExit("--device cuda: no CUDA GPU is visible to torch")
    repeats = args.repeats or (5 if args.quick else 7)
    default_threads = torch.get_num_threads()
    threads = args.threads or sorted({1, default_threads})
    if device.type == "cuda":
        threads = [default_threads]
    load_before = os.getloadavg()
    spec = QUICK if args.quick else FULL
    w = make_workload(seed=args.seed, **spec)
    o = _Ops(w, device, args.seed)
    copy_bytes = (64 << 20) if args.quick else (256 << 20)
    wl = {
        "quick": args.quick,
        **spec,
        "scene_voxels": o.voxels,
        "kept_pixels": o.pixels,
        "matched_pixels": o.matched,
        "repeats": repeats,
        "seed": args.seed,
        "copy_bytes": copy_bytes,
    }
    print(f"device: {device_description(device)}   torch {torch.__version__}")
    print(
        f"workload: {spec['frames']} frames {spec['height']}x{spec['width']}, {spec['channels']} channels, "
        f"{o.voxels} voxels at {spec['voxel_size'] * 100:g} cm, {o.pixels} kept pixels ({o.matched} matched); "
        f"medians of {repeats} paired rounds"
    )
    by_threads: dict[str, Any] = {}
    try:
        for t in threads:
            if device.type == "cpu":
                torch.set_num_threads(t)
            r = _measure(o, device, repeats, copy_bytes)
            by_threads[str(r["threads"])] = r
            _print_table(r)
    finally:
        torch.set_num_threads(default_threads)
    print(f"(combined = {' + '.join(COMBINED)})")
    speedup = min(r["combined"]["speedup"]["median"] for r in by_threads.values())
    fraction = min(r["combined"]["fraction_of_copy"]["median"] for r in by_threads.values())
    summary = {
        "speedup_vs_reference": speedup,
        "bandwidth_fraction": fraction,
        "targets": {
            "speedup_vs_reference": TARGET_SPEEDUP,
            "bandwidth_fraction": TARGET_BANDWIDTH_FRACTION,
            "met": speedup >= TARGET_SPEEDUP and fraction >= TARGET_BANDWIDTH_FRACTION,
        },
        "summary_rule": "lowest combined median over the thread counts",
        "device": device_description(device),
        "by_threads": by_threads,
        "workload": wl,
        "load_average": {"before": list(load_before), "after": list(os.getloadavg())},
        "torch_thp_alloc": os.environ.get("THP_MEM_ALLOC_ENABLE", "") == "1",
        "torch": torch.__version__,
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    }
    print(
        f"combined, lowest over {len(by_threads)} thread count(s): {speedup:.1f}x the reference "
        f"(target {TARGET_SPEEDUP:g}x), {fraction:.0%} of copy bandwidth (target {TARGET_BANDWIDTH_FRACTION:.0%}); "
        f"load average {load_before[0]:.1f} before, {summary['load_average']['after'][0]:.1f} after"
    )
    atomic_write_json(args.json, summary)
    print(f"wrote {args.json}")
    return summary
