"""Generate the synthetic default dataset: rooms rendered as RGB-D sequences plus their labeled clouds.

Outputs (docs/data.md):
  ``<out>/frames/<scene>/``  exported RGB-D frames (:mod:`pixvox.io.frames`),
  ``<out>/clouds/``          labeled point clouds sampled on all surfaces (``class_names`` in index.json),
  ``<out>/dataset.json``     generator options, written last: its presence means the dataset is complete.

Deterministic from the seed (scene ``i`` uses ``numpy.random.default_rng([seed, i])``); resumable per
scene. CLI: ``python -m pixvox.prep synthetic --out data/synthetic --scenes 4 --frames 40 --seed 0``.
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

from pixvox.io.atomic import atomic_write_json
from pixvox.io.clouds import CloudIndex, CloudRecord, write_cloud
from pixvox.io.frames import FrameWriter, is_complete_scene
from pixvox.io.jobs import run_jobs, setup_logging
from pixvox.prep.args import image_size
from pixvox.prep.synthetic.cloud import sample_cloud
from pixvox.prep.synthetic.render import camera_path, intrinsics_for, render
from pixvox.prep.synthetic.room import make_scene
from pixvox.prep.synthetic.scene import CLASS_NAMES

log = logging.getLogger("pixvox.prep.synthetic")

DATASET_JSON = "dataset.json"
FORMAT = "pixvox.synthetic"
VERSION = 1


def _scene_name(index: int) -> str:
    return f"synth{index:04d}"


def _options(
    num_scenes: int, frames_per_scene: int, seed: int, image_size: tuple[int, int], points_per_m2: float
) -> dict[str, Any]:
    return {
        "format": FORMAT,
        "version": VERSION,
        "num_scenes": int(num_scenes),
        "frames_per_scene": int(frames_per_scene),
        "seed": int(seed),
        "image_size": [int(image_size[0]), int(image_size[1])],
        "points_per_m2": float(points_per_m2),
    }


def _scene_job(job: dict[str, Any]) -> dict[str, Any]:
    """Generate, render and write one scene (frames + cloud file). Runs in a worker process."""
    out = Path(job["out"])
    i, seed = job["index"], job["seed"]
    size_hw = tuple(job["image_size"])
    name = _scene_name(i)
    scene_dir = out / "frames" / name
    meta = {"generator": FORMAT, "seed": seed, "scene_index": i, "image_size": list(size_hw)}
    cloud_path = out / "clouds" / f"{name}.npz"
    rng = np.random.default_rng([seed, i])
    scene = make_scene(rng)
    poses = camera_path(scene, job["frames"], rng)
    cloud_rng = np.random.default_rng([seed, i, 1])
    t0 = time.perf_counter()
    done = (
        is_complete_scene(scene_dir)
        and json.loads((scene_dir / "frames.json").read_text()).get("meta") == meta
    )
    if not done:
        K = intrinsics_for(size_hw)
        with FrameWriter(scene_dir, source=f"synthetic:{name}", intrinsics=K, meta=meta) as w:
            for k, T in enumerate(poses):
                r = render(scene, T, K, size_hw)
                depth_mm = np.round(r.depth * 1000.0)
                depth_mm = np.where((depth_mm > 0) & (depth_mm <= 65535), depth_mm, 0).astype(np.uint16)
                w.add(k, r.rgb, depth_mm, T)
    cloud = sample_cloud(scene, cloud_rng, job["points_per_m2"])
    sha = write_cloud(cloud_path, cloud, num_classes=len(CLASS_NAMES))
    return {
        "name": name,
        "frames": len(poses),
        "rendered": not done,
        "seconds": time.perf_counter() - t0,
        "num_points": cloud.num_points,
        "sha256": sha,
        "num_boxes": scene.num_boxes,
    }


def generate(
    out_dir: str | Path,
    num_scenes: int = 4,
    frames_per_scene: int = 40,
    seed: int = 0,
    image_size: tuple[int, int] = (240, 320),
    *,
    points_per_m2: float = 800.0,
    workers: int = 1,
    overwrite: bool = False,
    progress: bool = True,
) -> dict[str, Any]:
    """Write the synthetic dataset to ``out_dir`` (``frames/``, ``clouds/``, ``dataset.json``).

    Returns a summary (scenes, frames, frames rendered, points, seconds, frames per second, roots).

    Resumable: scenes whose export is already complete with the same options are not re-rendered; if
    ``dataset.json`` exists with the same options nothing is done. A folder made with other options is
    refused unless ``overwrite=True`` (which deletes its ``frames/``, ``clouds/`` and ``dataset.json``).
    """
    out = Path(out_dir)
    opts = _options(num_scenes, frames_per_scene, seed, image_size, points_per_m2)
    marker = out / DATASET_JSON
    if marker.is_file():
        prev = json.loads(marker.read_text())
        if prev.get("options") == opts:
            log.info("%s is complete (same options); nothing to do", out)
            return dict(prev.get("summary", {}), skipped_existing=True)
        if not overwrite:
            raise FileExistsError(
                f"{marker}: made with options {prev.get('options')}, not {opts}; "
                "use another --out folder or pass overwrite=True / --overwrite"
            )
    if overwrite:
        marker.unlink(missing_ok=True)
        for sub in ("frames", "clouds"):
            shutil.rmtree(out / sub, ignore_errors=True)
    if num_scenes < 1 or frames_per_scene < 1:
        raise ValueError("need at least one scene and one frame per scene")
    (out / "clouds").mkdir(parents=True, exist_ok=True)
    jobs = [
        {
            "out": str(out),
            "index": i,
            "seed": int(seed),
            "frames": int(frames_per_scene),
            "image_size": list(image_size),
            "points_per_m2": float(points_per_m2),
        }
        for i in range(num_scenes)
    ]
    t0 = time.perf_counter()
    results, failed = [], []
    for r in run_jobs(
        _scene_job,
        jobs,
        workers=workers,
        desc="synthetic scenes",
        key=lambda j: _scene_name(j["index"]),
        progress=progress,
    ):
        if r.ok:
            results.append(r.value)
        else:
            failed.append({"input": r.key, "reason": r.error})
            log.error("scene %s failed: %s", r.key, r.error)
    if failed:
        raise RuntimeError(f"synthetic generation failed for {len(failed)} scenes: {failed}")
    index = CloudIndex(root=out / "clouds", class_names=list(CLASS_NAMES), extra={"source": FORMAT})
    for r in sorted(results, key=lambda r: r["name"]):
        index.scenes.append(CloudRecord(r["name"], f"{r['name']}.npz", r["num_points"], r["sha256"]))
    index.write()
    elapsed = time.perf_counter() - t0
    rendered = sum(r["frames"] for r in results if r["rendered"])
    summary = {
        "scenes": len(results),
        "frames": sum(r["frames"] for r in results),
        "frames_rendered": rendered,
        "points": sum(r["num_points"] for r in results),
        "seconds": round(elapsed, 3),
        "frames_per_second": round(rendered / elapsed, 2) if rendered else None,
        "frames_root": str(out / "frames"),
        "clouds_root": str(out / "clouds"),
    }
    atomic_write_json(marker, {"options": opts, "summary": summary, "class_names": CLASS_NAMES})
    log.info("synthetic dataset: %s", summary)
    return summary


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="pixvox.prep synthetic",
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawTextHelpFormatter,
    )
    p.add_argument("--out", required=True, type=Path, help="output folder (frames/, clouds/, dataset.json)")
    p.add_argument("--scenes", type=int, default=4, help="number of rooms (default 4)")
    p.add_argument("--frames", type=int, default=40, help="frames rendered per room (default 40)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--image-size", type=image_size, default=(240, 320), help="HxW (default 240x320)")
    p.add_argument("--points-per-m2", type=float, default=800.0, help="labeled cloud density (default 800)")
    p.add_argument("--workers", type=int, default=1)
    p.add_argument("--overwrite", action="store_true", help="replace a dataset made with other options")
    p.add_argument("-v", "--verbose", action="store_true")
    a = p.parse_args(argv)
    setup_logging(a.verbose)
    summary = generate(
        a.out,
        a.scenes,
        a.frames,
        a.seed,
        a.image_size,
        points_per_m2=a.points_per_m2,
        workers=a.workers,
        overwrite=a.overwrite,
    )
    print(json.dumps(summary, indent=1))
    return 0
