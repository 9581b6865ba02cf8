"""Benchmark pixvox.ops (compiled kernels) against the pure-PyTorch reference, side by side in one run.

Workload: 8 depth frames of 480x640 rendered inside a synthetic 7 x 5 x 2.8 m box room whose walls,
floor and ceiling are ~210k voxels at 2.5 cm (5% of them dropped, so some pixels match nothing), with
holes, NaN and inf in the depth; 64-channel features. ``--quick`` runs 2 frames of 240x320, 16
channels and 5 cm voxels in well under a minute.

For each op it reports the best-of-N time of the extension and of the reference (runs alternate;
the minimum is the estimator least disturbed by other load on a shared machine, and both sides get
it; medians are kept in the JSON), their ratio, and the achieved bytes/s (minimum bytes each op must
read and write) against a tensor copy measured the same way in the same run. Prints a table and
writes JSON (atomically):

    python tools/bench_backproject.py [--quick] [--json PATH] [--device cpu|cuda] [--repeats N] [--threads N]

JSON keys: ``speedup_vs_reference`` and ``bandwidth_fraction`` (pixel_to_voxel + scatter-mean +
gather together), ``device``, ``copy_bandwidth_gbps``, ``ops`` (per-op detail), ``workload``.
"""

from __future__ import annotations

import argparse
import datetime
import json
import math
import os
import platform
import statistics
import tempfile
import time
from pathlib import Path
from typing import Callable

import torch

from pixvox import ops
from pixvox.ops import reference as ref

COMBINED = ("pixel_to_voxel", "scatter_mean", "gather")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument(
        "--quick", action="store_true", help="small workload (2 frames 240x320, 16 channels, 5 cm)"
    )
    p.add_argument(
        "--json", type=Path, default=Path("outputs/bench_backproject.json"), help="JSON output path"
    )
    p.add_argument("--device", default="cpu", choices=["cpu", "cuda"], help="device to benchmark on")
    p.add_argument("--repeats", type=int, default=None, help="timed runs per op (default 7, quick 3)")
    p.add_argument("--seed", type=int, default=0, help="seed of the synthetic scene and features")
    p.add_argument("--threads", type=int, default=None, help="CPU threads for both sides (default: torch's)")
    return p.parse_args(argv)


# ----------------------------------------------------------------------------- synthetic workload
def look_rotation(yaw: float, pitch: float) -> torch.Tensor:
    """Camera-to-world rotation of an OpenCV camera looking along (yaw, pitch) in a z-up world."""
    forward = torch.tensor(
        [math.cos(yaw) * math.cos(pitch), math.sin(yaw) * math.cos(pitch), math.sin(pitch)],
        dtype=torch.float64,
    )
    right = torch.linalg.cross(forward, torch.tensor([0.0, 0.0, 1.0], dtype=torch.float64))
    right = right / right.norm()
    down = torch.linalg.cross(forward, right)
    return torch.stack([right, down, forward], dim=1)


def render_box_depth(K: torch.Tensor, pose: torch.Tensor, height: int, width: int, lo, hi) -> torch.Tensor:
    """z-depth [H, W] (metres, float64) of the inside of the axis-aligned box [lo, hi] seen from ``pose``."""
    v, u = torch.meshgrid(
        torch.arange(height, dtype=torch.float64), torch.arange(width, dtype=torch.float64), indexing="ij"
    )
    ray_cam = torch.stack([(u - K[0, 2]) / K[0, 0], (v - K[1, 2]) / K[1, 1], torch.ones_like(u)], dim=-1)
    ray = ray_cam @ pose[:3, :3].T
    origin = pose[:3, 3]
    t_hit = torch.full((height, width), math.inf, dtype=torch.float64)
    for axis in range(3):
        d = ray[..., axis]
        plane = torch.where(d > 0, torch.tensor(hi[axis]), torch.tensor(lo[axis]))
        t_axis = torch.where(d != 0, (plane - origin[axis]) / d, torch.tensor(math.inf, dtype=torch.float64))
        t_hit = torch.minimum(t_hit, t_axis)
    return t_hit  # the camera ray has unit z, so the ray parameter is the z-depth


def box_surface_voxels(cells: tuple[int, int, int]) -> torch.Tensor:
    """[N, 3] int64 voxels of the six faces of the box of cells [0, n] per axis."""
    faces = []
    for axis in range(3):
        others = [a for a in range(3) if a != axis]
        grid = torch.stack(
            torch.meshgrid(
                torch.arange(cells[others[0]] + 1), torch.arange(cells[others[1]] + 1), indexing="ij"
            ),
            dim=-1,
        ).reshape(-1, 2)
        for value in (0, cells[axis]):
            face = torch.empty(grid.shape[0], 3, dtype=torch.int64)
            face[:, axis] = value
            face[:, others] = grid
            faces.append(face)
    return torch.unique(torch.cat(faces), dim=0)


def make_workload(quick: bool, seed: int) -> dict:
    g = torch.Generator().manual_seed(seed)
    frames, height, width, channels, voxel = (2, 240, 320, 16, 0.05) if quick else (8, 480, 640, 64, 0.025)
    scale = width / 640
    K = torch.tensor(
        [[525.0 * scale, 0, 319.5 * scale], [0, 525.0 * scale, 239.5 * scale], [0, 0, 1]], dtype=torch.float64
    )
    size = (7.0, 5.0, 2.8)
    cells = tuple(round(s / voxel) for s in size)
    # Surfaces through voxel centres, so rendered points sit mid-voxel, far from any voxel face.
    lo = [0.5 * voxel] * 3
    hi = [(c + 0.5) * voxel for c in cells]

    poses, depths = [], []
    for _ in range(frames):
        r = torch.rand(6, generator=g, dtype=torch.float64)
        position = [1.0 + r[0] * (size[0] - 2), 1.0 + r[1] * (size[1] - 2), 1.2 + 0.6 * r[2]]
        pose = torch.eye(4, dtype=torch.float64)
        pose[:3, :3] = look_rotation(float(r[3]) * 2 * math.pi, (float(r[4]) - 0.5) * 0.7)
        pose[:3, 3] = torch.tensor(position, dtype=torch.float64)
        poses.append(pose)
        depths.append(render_box_depth(K, pose, height, width, lo, hi))
    depth = torch.stack(depths).float()
    holes = torch.rand(depth.shape, generator=g)
    depth[holes < 0.03] = 0.0
    depth[(holes >= 0.03) & (holes < 0.035)] = math.nan
    depth[(holes >= 0.035) & (holes < 0.036)] = math.inf

    surface = box_surface_voxels(cells)
    keep = torch.rand(surface.shape[0], generator=g) >= 0.05
    surface = surface[keep]
    coords = torch.cat([torch.zeros(surface.shape[0], 1, dtype=torch.int64), surface], dim=1).int()
    coords = coords[torch.randperm(coords.shape[0], generator=g)]
    return {
        "depth": depth,
        "K": K.expand(frames, 3, 3).clone(),
        "poses": torch.stack(poses),
        "frame_batch": torch.zeros(frames, dtype=torch.int64),
        "coords": coords,
        "voxel_size": voxel,
        "channels": channels,
        "depth_max": 10.0,
        "generator": g,
    }


# ----------------------------------------------------------------------------- timing
def timer(device: torch.device) -> Callable[[Callable[[], object]], float]:
    def run(fn: Callable[[], object]) -> float:
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        start = time.perf_counter()
        fn()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        return time.perf_counter() - start

    return run


def time_pair(ext_fn, ref_fn, repeats: int, device: torch.device) -> tuple[list[float], list[float]]:
    """Seconds of each run of ``ext_fn`` and ``ref_fn``, run alternately after one warm-up each."""
    run = timer(device)
    run(ext_fn)
    run(ref_fn)
    ext_t, ref_t = [], []
    for _ in range(repeats):
        ext_t.append(run(ext_fn))
        ref_t.append(run(ref_fn))
    return ext_t, ref_t


def copy_bandwidth(device: torch.device, nbytes: int, repeats: int) -> float:
    """Bytes/s (read + write) of copying a pre-touched float32 buffer of ``nbytes``."""
    src = torch.rand(nbytes // 4, device=device)
    dst = torch.empty_like(src).fill_(0.0)
    run = timer(device)
    run(lambda: dst.copy_(src))
    seconds = min(run(lambda: dst.copy_(src)) for _ in range(max(repeats, 5)))
    return 2 * nbytes / seconds


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
    return f"cpu: {model}, {torch.get_num_threads()} threads"


def write_json_atomic(path: Path, payload: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(payload, f, indent=2)
            f.write("\n")
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


# ----------------------------------------------------------------------------- main
def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise SystemExit("--device cuda: no CUDA GPU is visible to torch")
    repeats = args.repeats or (3 if args.quick else 7)
    if args.threads:
        torch.set_num_threads(args.threads)
    w = make_workload(args.quick, args.seed)
    depth, K, poses, fb = (w[k].to(device) for k in ("depth", "K", "poses", "frame_batch"))
    coords, voxel, channels = w["coords"].to(device), w["voxel_size"], w["channels"]
    results: dict[str, dict] = {}

    def record(name: str, ext_runs: list[float], ref_runs: list[float], nbytes: int | None) -> None:
        ext_s, ref_s = min(ext_runs), min(ref_runs)
        results[name] = {
            "ext_ms": ext_s * 1e3,
            "reference_ms": ref_s * 1e3,
            "ext_median_ms": statistics.median(ext_runs) * 1e3,
            "reference_median_ms": statistics.median(ref_runs) * 1e3,
            "speedup": ref_s / ext_s,
            "bytes": nbytes,
            "ext_gbps": nbytes / ext_s / 1e9 if nbytes else None,
            "reference_gbps": nbytes / ref_s / 1e9 if nbytes else None,
        }

    runs = time_pair(lambda: ops.VoxelHash(coords), lambda: ref.ReferenceVoxelHash(coords), repeats, device)
    record("voxel_hash_build", *runs, None)
    scene, ref_scene = ops.VoxelHash(coords), ref.ReferenceVoxelHash(coords)

    p2v_kwargs = {"frame_batch": fb, "depth_max": w["depth_max"]}
    match = ops.pixel_to_voxel(depth, K, poses, voxel, scene, **p2v_kwargs)
    ref_match = ref.pixel_to_voxel_reference(depth, K, poses, voxel, ref_scene, **p2v_kwargs)
    if not (torch.equal(match.pixel_bvu, ref_match[0]) and torch.equal(match.voxel_index, ref_match[1])):
        raise SystemExit("pixel_to_voxel disagrees with the reference; not benchmarking a wrong result")
    runs = time_pair(
        lambda: ops.pixel_to_voxel(depth, K, poses, voxel, scene, **p2v_kwargs),
        lambda: ref.pixel_to_voxel_reference(depth, K, poses, voxel, ref_scene, **p2v_kwargs),
        repeats,
        device,
    )
    pixels, voxels = match.voxel_index.shape[0], coords.shape[0]
    item = depth.element_size()
    record("pixel_to_voxel", *runs, depth.numel() * item + pixels * (3 * 8 + 8 + 3 * item))

    index = match.voxel_index
    gen = torch.Generator(device=device).manual_seed(args.seed)
    pixel_feats = torch.randn(pixels, channels, device=device, generator=gen)
    voxel_feats = torch.randn(voxels, channels, device=device, generator=gen)
    f = pixel_feats.element_size()
    scatter_bytes = pixels * channels * f + pixels * 8 + voxels * channels * f + voxels * 8
    for reduce in ("mean", "max"):
        got = ops.scatter_to_voxels(pixel_feats, index, voxels, reduce).features
        want = ref.scatter_to_voxels_reference(pixel_feats, index, voxels, reduce)[0]
        if not torch.allclose(got, want, rtol=1e-5, atol=1e-5):
            raise SystemExit(f"scatter {reduce} disagrees with the reference")
        del got, want
        runs = time_pair(
            lambda r=reduce: ops.scatter_to_voxels(pixel_feats, index, voxels, r),
            lambda r=reduce: ref.scatter_to_voxels_reference(pixel_feats, index, voxels, r),
            repeats,
            device,
        )
        record(f"scatter_{reduce}", *runs, scatter_bytes)

    if not torch.equal(
        ops.gather_from_voxels(voxel_feats, index), ref.gather_from_voxels_reference(voxel_feats, index)
    ):
        raise SystemExit("gather disagrees with the reference")
    runs = time_pair(
        lambda: ops.gather_from_voxels(voxel_feats, index),
        lambda: ref.gather_from_voxels_reference(voxel_feats, index),
        repeats,
        device,
    )
    record("gather", *runs, pixels * 8 + voxels * channels * f + pixels * channels * f)

    copy_bytes = 64 << 20 if args.quick else 256 << 20
    copy_bps = copy_bandwidth(device, copy_bytes, repeats)
    ext_total = sum(results[k]["ext_ms"] for k in COMBINED) / 1e3
    ref_total = sum(results[k]["reference_ms"] for k in COMBINED) / 1e3
    bytes_total = sum(results[k]["bytes"] for k in COMBINED)
    for r in results.values():
        r["ext_fraction_of_copy"] = r["ext_gbps"] * 1e9 / copy_bps if r["bytes"] else None
    summary = {
        "speedup_vs_reference": ref_total / ext_total,
        "bandwidth_fraction": bytes_total / ext_total / copy_bps,
        "device": device_description(device),
        "copy_bandwidth_gbps": copy_bps / 1e9,
        "combined_ops": list(COMBINED),
        "combined_ext_ms": ext_total * 1e3,
        "combined_reference_ms": ref_total * 1e3,
        "timing": f"best of {repeats} alternating runs after a warm-up (medians in ops.*_median_ms)",
        "ops": results,
        "workload": {
            "quick": args.quick,
            "frames": int(depth.shape[0]),
            "height": int(depth.shape[1]),
            "width": int(depth.shape[2]),
            "channels": channels,
            "voxel_size_m": voxel,
            "scene_voxels": voxels,
            "kept_pixels": pixels,
            "matched_pixels": int((index >= 0).sum()),
            "repeats": repeats,
            "threads": torch.get_num_threads(),
            "seed": args.seed,
        },
        "torch": torch.__version__,
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    }

    print(f"device: {summary['device']}   torch {torch.__version__}")
    wl = summary["workload"]
    print(
        f"workload: {wl['frames']} frames {wl['height']}x{wl['width']}, {channels} channels, "
        f"{voxels} voxels at {voxel * 100:g} cm, {pixels} kept pixels ({wl['matched_pixels']} matched)"
    )
    print(f"copy bandwidth (read + write): {copy_bps / 1e9:.1f} GB/s\n")
    columns = ("ext ms", "ref ms", "speedup", "ext GB/s", "ref GB/s", "ext/copy")
    header = f"{'op':<18}" + "".join(f"{c:>{9 if c == 'speedup' else 10}}" for c in columns)
    print(header)
    print("-" * len(header))
    for name, r in results.items():
        bw = (
            f"{r['ext_gbps']:>10.2f}{r['reference_gbps']:>10.2f}{r['ext_fraction_of_copy']:>10.0%}"
            if r["bytes"]
            else ""
        )
        print(f"{name:<18}{r['ext_ms']:>10.1f}{r['reference_ms']:>10.1f}{r['speedup']:>8.1f}x{bw}")
    print("-" * len(header))
    print(
        f"{'combined':<18}{ext_total * 1e3:>10.1f}{ref_total * 1e3:>10.1f}"
        f"{summary['speedup_vs_reference']:>8.1f}x"
        f"{bytes_total / ext_total / 1e9:>10.2f}{bytes_total / ref_total / 1e9:>10.2f}"
        f"{summary['bandwidth_fraction']:>10.0%}"
    )
    print(f"(combined = {' + '.join(COMBINED)})")
    write_json_atomic(args.json, summary)
    print(f"wrote {args.json}")
    return summary


if __name__ == "__main__":
    main()
