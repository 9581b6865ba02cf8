"""Build voxelized RGB-D fusions (the pretraining data) from exported RGB-D frames.

Each sample groups F consecutive exported frames of one scene (F = 1 reproduces single-view PPKT),
back-projects their depth into the world with their camera-to-world poses, voxelizes the union
(default 2.5 cm, mean color per voxel) and stores the voxels together with the frames' color and
depth images, intrinsics and poses (format: docs/data.md, reader: :mod:`pixvox.io.fusions`).
Pixel-to-voxel matching is not stored; training recomputes it after 3D augmentation. The view pairs
(two fusions of one scene with >= 30% voxel overlap, PointContrast's input) are computed from the
samples on every run and stored in ``index.json`` (:mod:`pixvox.prep.fusion_pairs`).

Samples are written atomically and ``index.json`` last; rerunning skips finished samples (and
refuses an output folder made with other options). ``--workers`` runs samples in processes.

CLI::

    python -m pixvox.prep fusions --frames data/synthetic/frames --out data/fusions \\
        --frames-per-sample 1 --voxel-size 0.025 --image-size 240x320 --workers 2

Python::

    from pixvox.prep.fusion import make_fusions
    summary = make_fusions("data/synthetic/frames", "data/fusions", frames_per_sample=1)
"""

from __future__ import annotations

import argparse
import json
import logging
import shutil
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from pixvox.geometry import backproject_depth, voxelize
from pixvox.io.atomic import atomic_write_json, remove_stale_temp_files, sha256_file
from pixvox.io.frames import FrameSequence, find_scene_dirs, frame_paths, resize_frame
from pixvox.io.fusions import (
    INDEX_JSON,
    SAMPLES_DIR,
    FusionFormatError,
    FusionIndex,
    FusionRecord,
    FusionSample,
    load_fusion_sample,
    write_fusion_sample,
)
from pixvox.io.jobs import run_jobs, setup_logging
from pixvox.prep.args import image_size
from pixvox.prep.fusion_pairs import DEFAULT_MIN_OVERLAP, view_pairs_json

log = logging.getLogger("pixvox.prep.fusion")

OPTIONS_JSON = "options.json"


class EmptySampleError(ValueError):
    """No depth pixel of the sample's frames lies in the depth range: the sample is skipped."""


def fuse_frames(
    frames: list,
    voxel_size: float,
    depth_min: float,
    depth_max: float,
) -> tuple[np.ndarray, np.ndarray, int]:
    """Fuse registered RGB-D frames into voxels.

    Args:
        frames: :class:`pixvox.io.frames.RGBDFrame` list (any resolution; full resolution is best).
        voxel_size: metres. depth_min, depth_max: keep depths in ``(depth_min, depth_max]`` metres.

    Returns:
        ``coords`` int32 ``[V, 3]`` (``floor(X_world / voxel_size)``, sorted lexicographically),
        ``colors`` uint8 ``[V, 3]`` (mean RGB of the points in each voxel, rounded), and the number of
        points fused. Computed in float64 so results do not depend on the image size's rounding.
    """
    xyz_all, rgb_all = [], []
    for f in frames:
        depth = torch.from_numpy(f.depth_mm.astype(np.float64) / 1000.0)
        xyz, vu = backproject_depth(
            depth, torch.from_numpy(f.intrinsics), torch.from_numpy(f.cam_to_world), depth_min, depth_max
        )
        xyz_all.append(xyz)
        vun = vu.numpy()
        rgb_all.append(torch.from_numpy(f.color[vun[:, 0], vun[:, 1]]))
    xyz = torch.cat(xyz_all)
    if xyz.shape[0] == 0:
        raise EmptySampleError(f"no depth within ({depth_min}, {depth_max}] m in any of the frames")
    coords, _, mean = voxelize(xyz.numpy(), voxel_size, torch.cat(rgb_all).numpy())
    colors = np.clip(np.round(mean), 0, 255).astype(np.uint8)
    return coords, colors, int(xyz.shape[0])


def _sample_job(job: dict[str, Any]) -> dict[str, Any]:
    """Build (or reuse) one sample file; returns its index record plus counters."""
    out = Path(job["path"])
    F = len(job["frame_ids"])
    if out.is_file():  # finished by an earlier run (atomic write: complete if present)
        try:
            s = load_fusion_sample(out)
            ok = s.num_frames == F and abs(s.voxel_size - job["voxel_size"]) < 1e-12
            if ok and job["image_size"] is not None:
                ok = tuple(s.images.shape[1:3]) == tuple(job["image_size"])
            if ok:
                return {**_record(job, s.num_voxels, sha256_file(out)), "reused": True, "points": 0}
        except FusionFormatError as err:
            log.warning("rebuilding %s: %s", out, err)
    seq = FrameSequence(job["scene_dir"])
    frames = [seq.read(i) for i in job["frame_ids"]]
    try:
        coords, colors, n_points = fuse_frames(frames, job["voxel_size"], job["depth_min"], job["depth_max"])
    except EmptySampleError as err:  # name the depth images, so the skip says what to look at
        files = [str(frame_paths(job["scene_dir"], i)["depth"]) for i in job["frame_ids"]]
        raise EmptySampleError(f"{err} ({', '.join(files)})") from None
    if job["image_size"] is not None:
        frames = [resize_frame(f, tuple(job["image_size"])) for f in frames]
    sample = FusionSample(
        coords=coords,
        colors=colors,
        images=np.stack([f.color for f in frames]),
        depths=np.stack([f.depth_mm for f in frames]),
        intrinsics=np.stack([f.intrinsics for f in frames]).astype(np.float32),
        cam_to_world=np.stack([f.cam_to_world for f in frames]).astype(np.float64),
        voxel_size=float(job["voxel_size"]),
    )
    sha = write_fusion_sample(out, sample)
    return {**_record(job, sample.num_voxels, sha), "reused": False, "points": n_points}


def _record(job: dict[str, Any], num_voxels: int, sha: str) -> dict[str, Any]:
    return {
        "name": job["name"],
        "file": f"{SAMPLES_DIR}/{job['name']}.npz",
        "num_voxels": int(num_voxels),
        "num_frames": len(job["frame_ids"]),
        "sha256": sha,
        "source": f"{job['scene']} frames {','.join(str(i) for i in job['frame_ids'])}",
    }


def plan_samples(frame_ids: list[int], frames_per_sample: int, stride: int) -> list[list[int]]:
    """Groups of ``frames_per_sample`` consecutive exported frames, one starting every ``stride`` frames.

    A trailing group with fewer frames is dropped.
    """
    return [
        frame_ids[s : s + frames_per_sample] for s in range(0, len(frame_ids) - frames_per_sample + 1, stride)
    ]


def make_fusions(
    frames_root: str | Path,
    out_root: str | Path,
    *,
    frames_per_sample: int = 1,
    stride: int | None = None,
    voxel_size: float = 0.025,
    depth_min: float = 0.1,
    depth_max: float = 10.0,
    image_size: tuple[int, int] | None = None,
    workers: int = 1,
    max_samples: int | None = None,
    overwrite: bool = False,
    progress: bool = True,
    pair_min_overlap: float = DEFAULT_MIN_OVERLAP,
) -> dict[str, Any]:
    """Build the fusion dataset ``out_root`` from exported frames under ``frames_root``; returns a summary.

    Args:
        frames_root: one exported scene folder, or a folder of them (see :mod:`pixvox.io.frames`).
        out_root: output folder (``samples/``, ``options.json``, ``index.json`` written last).
        frames_per_sample: F consecutive frames fused per sample (1 = single-view PPKT).
        stride: exported frames between the first frames of consecutive samples (default F: no overlap).
        voxel_size: metres. depth_min, depth_max: depth range kept, metres.
        image_size: optional (H, W) the stored images are resized to (color bilinear, depth nearest,
            intrinsics scaled); fusion itself uses the full-resolution depth.
        workers: processes. max_samples: keep only the first N planned samples (quick tests).
        overwrite: replace an output folder made with other options instead of refusing it.
        pair_min_overlap: store the view pairs (two fusions of one scene) whose voxel overlap is at
            least this (:mod:`pixvox.prep.fusion_pairs`); recomputed on every run, from the samples.

    Returns:
        ``{"samples", "new", "reused", "skipped": [{"input", "reason"}], "frames_fused", "points_fused",
        "seconds", "samples_per_s", "frames_per_s", "index"}`` (rates over newly built samples).
    """
    if frames_per_sample < 1:
        raise ValueError(f"frames_per_sample must be >= 1, got {frames_per_sample}")
    stride = frames_per_sample if stride is None else int(stride)
    if stride < 1:
        raise ValueError(f"stride must be >= 1, got {stride}")
    if not (voxel_size > 0 and 0 <= depth_min < depth_max):
        raise ValueError(
            f"need voxel_size > 0 and 0 <= depth_min < depth_max (got {voxel_size}, {depth_min}, {depth_max})"
        )
    out = Path(out_root)
    options = {
        "frames_root": str(Path(frames_root).resolve()),
        "frames_per_sample": int(frames_per_sample),
        "stride": stride,
        "voxel_size": float(voxel_size),
        "depth_min": float(depth_min),
        "depth_max": float(depth_max),
        "image_size": None if image_size is None else [int(image_size[0]), int(image_size[1])],
        "max_samples": max_samples,
    }
    opt_path = out / OPTIONS_JSON
    if opt_path.is_file():
        prev = json.loads(opt_path.read_text())
        # Reusing samples built from other frames or options would mix datasets (max_samples only
        # truncates the list, so a run with another value can extend or shrink the same dataset).
        if {k: v for k, v in prev.items() if k != "max_samples"} != {
            k: v for k, v in options.items() if k != "max_samples"
        }:
            if not overwrite:
                raise FileExistsError(
                    f"{opt_path}: {out} was built with options {prev}, not {options}; "
                    "use another output folder or --overwrite"
                )
            shutil.rmtree(out / SAMPLES_DIR, ignore_errors=True)
            (out / INDEX_JSON).unlink(missing_ok=True)
    (out / SAMPLES_DIR).mkdir(parents=True, exist_ok=True)
    atomic_write_json(opt_path, options)
    removed = remove_stale_temp_files(out / SAMPLES_DIR)
    if removed:
        log.info("removed %d temporary files left by an interrupted run", removed)

    complete, incomplete = find_scene_dirs(frames_root)
    if not complete and not incomplete:
        raise FileNotFoundError(
            f"{frames_root}: no exported scenes (folders with frames.json); export them first (python -m pixvox.prep <dataset> ...)"
        )
    skipped: list[dict[str, Any]] = [
        {
            "input": str(d),
            "reason": "incomplete export (no frames.json); rerun its reader (python -m pixvox.prep <dataset>)",
        }
        for d in incomplete
    ]
    jobs: list[dict[str, Any]] = []
    for scene_dir in complete:
        try:
            seq = FrameSequence(scene_dir)
        except (ValueError, OSError) as err:
            skipped.append({"input": str(scene_dir), "reason": str(err)})
            continue
        groups = plan_samples(seq.frame_ids, frames_per_sample, stride)
        if not groups:
            skipped.append(
                {
                    "input": str(scene_dir),
                    "reason": f"{len(seq)} exported frames < {frames_per_sample} per sample",
                }
            )
        for ids in groups:
            name = f"{seq.name}_{ids[0]:06d}"
            jobs.append(
                {
                    "name": name,
                    "scene": seq.name,
                    "scene_dir": str(scene_dir),
                    "frame_ids": ids,
                    "path": str(out / SAMPLES_DIR / f"{name}.npz"),
                    "voxel_size": float(voxel_size),
                    "depth_min": float(depth_min),
                    "depth_max": float(depth_max),
                    "image_size": options["image_size"],
                }
            )
    if max_samples is not None:
        jobs = jobs[:max_samples]
    names = [j["name"] for j in jobs]
    if len(set(names)) != len(names):
        raise ValueError(f"{frames_root}: two scene folders share a name; sample names would collide")

    t0 = time.perf_counter()
    records: list[FusionRecord] = []
    new = reused = frames_fused = points_fused = 0
    for r in run_jobs(
        _sample_job, jobs, workers=workers, desc="fusions", key=lambda j: j["name"], progress=progress
    ):
        if not r.ok:
            skipped.append({"input": r.key, "reason": r.error})
            log.warning("skipped sample %s: %s", r.key, r.error)
            continue
        v = r.value
        if v["reused"]:
            reused += 1
        else:
            new += 1
            frames_fused += v["num_frames"]
            points_fused += v["points"]
        fields = ("name", "file", "num_voxels", "num_frames", "sha256", "source")
        records.append(FusionRecord(**{k: v[k] for k in fields}))
    elapsed = time.perf_counter() - t0
    scene_of = {j["name"]: j["scene"] for j in jobs}
    by_scene: dict[str, list[tuple[str, np.ndarray]]] = {}
    for rec in records:
        with np.load(out / rec.file, allow_pickle=False) as z:  # reads only the coords array
            by_scene.setdefault(scene_of[rec.name], []).append((rec.name, z["coords"]))
    view_pairs = view_pairs_json(by_scene, pair_min_overlap)
    index = FusionIndex(
        root=out,
        voxel_size=float(voxel_size),
        frames_per_sample=int(frames_per_sample),
        samples=records,
        skipped=sorted(skipped, key=lambda s: str(s["input"])),
        extra={"options": options, "view_pairs": view_pairs},
    )
    index.write()
    summary = {
        "samples": len(records),
        "new": new,
        "reused": reused,
        "skipped": index.skipped,
        "frames_fused": frames_fused,
        "points_fused": points_fused,
        "seconds": round(elapsed, 3),
        "samples_per_s": round(new / elapsed, 3) if new and elapsed > 0 else None,
        "frames_per_s": round(frames_fused / elapsed, 3) if new and elapsed > 0 else None,
        "index": str(out / INDEX_JSON),
        "view_pairs": sum(len(p) for p in view_pairs["scenes"].values()),
    }
    log.info(
        "fusions: %d samples (%d new, %d reused), %d skipped; %s samples/s",
        len(records),
        new,
        reused,
        len(index.skipped),
        summary["samples_per_s"],
    )
    for s in index.skipped:
        log.info("  skipped %s: %s", s["input"], s["reason"])
    return summary


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="pixvox.prep fusions", description=__doc__.split("\n\n")[0])
    p.add_argument("--frames", required=True, type=Path, help="exported scene folder or folder of them")
    p.add_argument("--out", required=True, type=Path, help="output fusion dataset folder")
    p.add_argument("--frames-per-sample", type=int, default=1, help="F frames fused per sample (default 1)")
    p.add_argument("--stride", type=int, default=None, help="frames between sample starts (default F)")
    p.add_argument("--voxel-size", type=float, default=0.025, help="metres (default 0.025)")
    p.add_argument("--depth-min", type=float, default=0.1, help="metres (default 0.1)")
    p.add_argument("--depth-max", type=float, default=10.0, help="metres (default 10)")
    p.add_argument("--image-size", type=image_size, default=None, help="resize stored images to HxW")
    p.add_argument("--workers", type=int, default=1)
    p.add_argument("--max-samples", type=int, default=None)
    p.add_argument("--overwrite", action="store_true", help="replace an output made with other options")
    p.add_argument(
        "--pair-min-overlap",
        type=float,
        default=DEFAULT_MIN_OVERLAP,
        help=f"store view pairs (PointContrast) with at least this voxel overlap (default {DEFAULT_MIN_OVERLAP})",
    )
    p.add_argument("--no-progress", action="store_true")
    p.add_argument("-v", "--verbose", action="store_true")
    a = p.parse_args(argv)
    setup_logging(a.verbose)
    summary = make_fusions(
        a.frames,
        a.out,
        frames_per_sample=a.frames_per_sample,
        stride=a.stride,
        voxel_size=a.voxel_size,
        depth_min=a.depth_min,
        depth_max=a.depth_max,
        image_size=a.image_size,
        workers=a.workers,
        max_samples=a.max_samples,
        overwrite=a.overwrite,
        progress=not a.no_progress,
        pair_min_overlap=a.pair_min_overlap,
    )
    print(json.dumps({**summary, "skipped": len(summary["skipped"])}))
    return 0
