"""SUN RGB-D raw release → exported frames (one single-frame scene per SUN RGB-D image).

Every folder under ``--root`` that holds ``image/``, ``depth/`` and ``intrinsics.txt`` is one frame
(e.g. ``SUNRGBD/kv1/NYUdata/NYU0001``). Its scene name is the path below the root joined by ``_``.

- Depth: ``depth/*.png`` (or ``--depth-folder depth_bfx`` for the inpainted maps) stores millimetres
  rotated left by 3 bits; it is rotated back (:func:`pixvox.io.depth.sunrgbd_to_mm`).
- Intrinsics: ``intrinsics.txt`` (3x3).
- Pose: the tilt in ``extrinsics/*.txt`` (the last file in name order, as the SUN RGB-D toolbox does)
  is a rotation ``E`` in the OpenCV camera frame. The toolbox builds upright points as
  ``Rtilt @ [x, z, -y]`` with ``Rtilt = P E P^T`` and ``P = [[1,0,0],[0,0,1],[0,-1,0]]``, i.e.
  ``X_up = P E X_cv``. The exported camera-to-world pose is therefore ``[[P E, 0], [0, 1]]``: world z
  points up (against gravity), the origin is the camera centre.

CLI::

    python -m pixvox.prep sunrgbd --root /data/SUNRGBD --out data/sunrgbd/frames --workers 4
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path
from typing import Any

import numpy as np

from pixvox.io.atomic import atomic_write_json
from pixvox.io.depth import sunrgbd_to_mm
from pixvox.io.frames import (
    FrameWriter,
    check_intrinsics,
    check_pose,
    is_complete_scene,
    read_matrix_txt,
)
from pixvox.io.images import read_color, read_depth_png, resize_color
from pixvox.io.jobs import run_jobs, setup_logging

log = logging.getLogger("pixvox.prep.sunrgbd")

#: OpenCV camera axes (x right, y down, z forward) → SUN RGB-D's upright axes (x right, y forward, z up).
CV_TO_UPRIGHT = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0], [0.0, -1.0, 0.0]])
IMAGE_EXTS = (".jpg", ".jpeg", ".png")


class SunRGBDError(ValueError):
    """A SUN RGB-D frame folder is missing a file or has an unreadable one (message names it)."""


def find_frame_dirs(root: str | Path) -> list[Path]:
    """Folders under ``root`` holding ``image/``, ``depth/`` and ``intrinsics.txt``, sorted."""
    root = Path(root)
    if not root.is_dir():
        raise SunRGBDError(f"{root}: folder not found")
    return sorted(p.parent for p in root.rglob("intrinsics.txt") if (p.parent / "image").is_dir())


def _single_file(folder: Path, exts: tuple[str, ...]) -> Path:
    files = sorted(p for p in folder.glob("*") if p.suffix.lower() in exts)
    if not files:
        raise SunRGBDError(f"{folder}: no image file")
    return files[0]


def tilt_pose(extrinsics: np.ndarray) -> np.ndarray:
    """4x4 camera-to-world from SUN RGB-D's tilt ``E`` (3x3, 3x4 or 4x4; only its rotation is used)."""
    E = np.asarray(extrinsics, dtype=np.float64)[:3, :3]
    T = np.eye(4)
    T[:3, :3] = CV_TO_UPRIGHT @ E
    return T


def read_frame(
    frame_dir: str | Path, depth_folder: str = "depth"
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """One SUN RGB-D frame folder → (color uint8 [H,W,3], depth uint16 mm [H,W], K 3x3, pose 4x4)."""
    d = Path(frame_dir)
    ext_files = sorted((d / "extrinsics").glob("*.txt")) if (d / "extrinsics").is_dir() else []
    if not ext_files:
        raise SunRGBDError(f"{d / 'extrinsics'}: no extrinsics file (the tilt); the frame cannot be posed")
    ext_path = ext_files[-1]
    text = ext_path.read_text().split()
    shape = (4, 4) if len(text) == 16 else (3, 4) if len(text) == 12 else (3, 3)
    E = read_matrix_txt(ext_path, shape)
    pose = check_pose(tilt_pose(E), ext_path)
    K = check_intrinsics(read_matrix_txt(d / "intrinsics.txt", (3, 3)), d / "intrinsics.txt")
    depth = sunrgbd_to_mm(read_depth_png(_single_file(d / depth_folder, (".png",))))
    color = read_color(_single_file(d / "image", IMAGE_EXTS))
    if color.shape[:2] != depth.shape:
        color = resize_color(color, depth.shape)
    return color, depth, K, pose


def scene_name(root: Path, frame_dir: Path) -> str:
    return "_".join(frame_dir.relative_to(root).parts) or frame_dir.name


def export_frame(
    frame_dir: str | Path, out_dir: str | Path, depth_folder: str = "depth", overwrite: bool = False
) -> bool:
    """Export one SUN RGB-D frame as a one-frame scene; returns False if it was already exported."""
    out = Path(out_dir)
    if is_complete_scene(out) and not overwrite:
        return False
    color, depth, K, pose = read_frame(frame_dir, depth_folder)
    w = FrameWriter(
        out, source=f"sunrgbd:{Path(frame_dir).name}", intrinsics=K, meta={"depth_folder": depth_folder}
    )
    w.add(0, color, depth, pose)
    w.finish()
    return True


def _job(job: dict[str, Any]) -> bool:
    return export_frame(job["dir"], job["out"], job["depth_folder"], job["overwrite"])


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="pixvox.prep sunrgbd", description=__doc__.split("\n\n")[0])
    p.add_argument("--root", type=Path, required=True, help="SUN RGB-D root (e.g. .../SUNRGBD)")
    p.add_argument("--out", type=Path, required=True, help="output folder of exported scenes")
    p.add_argument("--depth-folder", default="depth", help="depth (raw, default) or depth_bfx (inpainted)")
    p.add_argument("--workers", type=int, default=1)
    p.add_argument("--overwrite", action="store_true")
    p.add_argument("-v", "--verbose", action="store_true")
    a = p.parse_args(argv)
    setup_logging(a.verbose)
    dirs = find_frame_dirs(a.root)
    jobs = [
        {
            "dir": str(d),
            "out": str(a.out / scene_name(a.root, d)),
            "depth_folder": a.depth_folder,
            "overwrite": a.overwrite,
        }
        for d in dirs
    ]
    new = old = 0
    failed: list[tuple[str, str]] = []
    for r in run_jobs(_job, jobs, workers=a.workers, desc="SUN RGB-D frames", key=lambda j: j["dir"]):
        if r.ok:
            new, old = new + int(r.value), old + int(not r.value)
        else:
            failed.append((r.key, r.error or ""))
    log.info("SUN RGB-D: %d frames exported, %d already done, %d skipped", new, old, len(failed))
    for key, err in failed:
        log.warning("skipped %s: %s", key, err)
    atomic_write_json(
        a.out / "sunrgbd_summary.json",
        {
            "exported": new,
            "already_done": old,
            "skipped": [{"input": k, "reason": e} for k, e in failed],
        },
    )
    if not jobs:
        log.error("%s: no SUN RGB-D frame folders (image/, depth/, intrinsics.txt) found", a.root)
    return 0 if jobs else 1
