"""Export RGB-D sequences (color, depth, poses, intrinsics) to the exported-frames format.

Layouts are described in :mod:`pixvox.prep.sequence.layouts` (``--layout auto`` detects them). Depth
encodings (``--depth-format``): ``mm`` (default), ``scale:<units per metre>`` (TUM: ``scale:5000``),
``sunrgbd`` (3-bit circular shift) or ``nyu-raw`` (NYU raw Kinect PGM); see :mod:`pixvox.io.depth`.

Frame ids in the output are positions in the sequence (0, 1, ...; 7-Scenes: the numbers in the file
names). Frames with a missing/corrupt file, a missing or non-finite pose are skipped and listed with the
reason in ``frames.json``. Color images of another size than depth are resized to it (the camera is
assumed registered, i.e. same field of view).

CLI::

    python -m pixvox.prep sequence --input ../shared/data/icl_livingroom1 --out data/frames/icl_lr1
    python -m pixvox.prep sequence --input ../shared/data/sun3d_fragments --batch --out data/frames/sun3d
"""

from __future__ import annotations

import argparse
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from pixvox.io.depth import nyu_fix_byte_order, nyu_raw_to_mm, scale_to_mm, sunrgbd_to_mm
from pixvox.io.frames import (
    FrameFormatError,
    FrameSequence,
    FrameWriter,
    check_pose,
    is_complete_scene,
    read_matrix_txt,
)
from pixvox.io.images import ImageReadError, read_color, read_depth_png, read_pgm16, resize_color
from pixvox.io.jobs import run_jobs, setup_logging
from pixvox.prep.sequence.layouts import LAYOUTS, FrameSource, find_sequences, load_layout
from pixvox.prep.sequence.trajectories import SequenceError, read_intrinsics_txt

log = logging.getLogger("pixvox.prep.sequence")


def parse_depth_format(text: str) -> Callable[[Path], np.ndarray]:
    """``mm`` | ``scale:<units per metre>`` | ``sunrgbd`` | ``nyu-raw`` → function(depth file) → uint16 mm."""
    if text == "mm":
        return read_depth_png_or_pgm
    if text.startswith("scale:"):
        units = float(text.split(":", 1)[1])
        return lambda p: scale_to_mm(read_depth_png_or_pgm(p), units)
    if text == "sunrgbd":
        return lambda p: sunrgbd_to_mm(read_depth_png_or_pgm(p))
    if text == "nyu-raw":
        return lambda p: nyu_raw_to_mm(nyu_fix_byte_order(read_depth_png_or_pgm(p)))
    raise ValueError(f"unknown depth format {text!r}; use mm, scale:<units per metre>, sunrgbd or nyu-raw")


def read_depth_png_or_pgm(path: Path) -> np.ndarray:
    """Raw uint16 depth from a 16-bit PNG or a 16-bit binary PGM (big-endian, per the PGM spec)."""
    return read_pgm16(path) if Path(path).suffix.lower() == ".pgm" else read_depth_png(path)


def export_sequence(
    input_dir: str | Path,
    out_dir: str | Path,
    *,
    layout: str = "auto",
    intrinsics: np.ndarray | None = None,
    depth_format: str | None = None,
    frame_skip: int = 1,
    trajectory: str | Path | None = None,
    max_frames: int | None = None,
    overwrite: bool = False,
) -> dict[str, Any]:
    """Export one sequence to ``out_dir`` (one exported scene folder); returns its ``frames.json`` content.

    ``intrinsics`` (3x3) overrides the layout's; ``depth_format`` overrides the layout's default;
    every ``frame_skip``-th frame is kept. An existing complete export with the same options is kept.
    """
    if frame_skip < 1:
        raise ValueError(f"frame_skip must be >= 1, got {frame_skip}")
    seq = load_layout(input_dir, layout, Path(trajectory) if trajectory else None)
    K = intrinsics if intrinsics is not None else seq.intrinsics
    if K is None:
        raise SequenceError(
            f"{input_dir}: no intrinsics found (camera*.json / intrinsic(s).txt / camera-intrinsics.txt); "
            "pass --intrinsics or --fx/--fy/--cx/--cy"
        )
    fmt = depth_format or seq.depth_format
    read_depth = parse_depth_format(fmt)
    out = Path(out_dir)
    meta = {
        "input": str(Path(input_dir).resolve()),
        "frame_skip": frame_skip,
        "depth_format": fmt,
        "max_frames": max_frames,
    }
    if is_complete_scene(out) and not overwrite:
        prev = FrameSequence(out)
        if prev.meta == meta:
            log.info("%s: already exported, skipping", out)
            return {
                "source": prev.source,
                "frames": prev.frame_ids,
                "skipped": prev.skipped,
                "meta": prev.meta,
            }
    chosen = [f for f in sorted(seq.frames, key=lambda f: f.frame_id) if f.frame_id % frame_skip == 0]
    if max_frames is not None:
        chosen = chosen[:max_frames]
    source = f"rgbd_sequence:{seq.kind}:{Path(input_dir).name}"
    w = FrameWriter(out, source=source, intrinsics=K, meta=meta)
    for f in chosen:
        try:
            color, depth, pose = _read_frame(f, read_depth, seq.invalid_depth_value, seq.trajectory)
        except (FrameFormatError, ImageReadError, SequenceError, ValueError, OSError) as err:
            w.skip(f.frame_id, str(err))
            log.warning("%s: skipped frame %d: %s", out, f.frame_id, err)
            continue
        w.add(f.frame_id, color, depth, pose)
    info = w.finish()
    if info["skipped"]:
        log.info("%s: exported %d frames, skipped %d", out, len(info["frames"]), len(info["skipped"]))
    return info


def _read_frame(
    f: FrameSource,
    read_depth: Callable[[Path], np.ndarray],
    invalid_value: int | None,
    trajectory: Path | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    if f.pose is None:
        raise SequenceError(f"frame {f.frame_id}: {f.missing}")
    if isinstance(f.pose, Path):
        pose = check_pose(read_matrix_txt(f.pose, (4, 4)), f.pose)
    else:
        pose = check_pose(f.pose, f"{trajectory or 'trajectory'} entry {f.frame_id}")
    if f.color is None or not f.color.exists():
        raise SequenceError(f"frame {f.frame_id}: color image missing")
    if f.depth is None or not f.depth.exists():
        raise SequenceError(f"frame {f.frame_id}: depth image missing")
    depth = read_depth(f.depth)
    if invalid_value is not None:
        depth = np.where(depth == invalid_value, 0, depth).astype(np.uint16)
    color = read_color(f.color)
    if color.shape[:2] != depth.shape:
        color = resize_color(color, depth.shape)
    return color, depth, pose


def _export_job(job: dict[str, Any]) -> dict[str, Any]:
    info = export_sequence(job.pop("input"), job.pop("out"), **job)
    return {"frames": len(info["frames"]), "skipped": len(info["skipped"])}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="pixvox.prep sequence", description=__doc__.split("\n\n")[0])
    p.add_argument(
        "--input", required=True, type=Path, nargs="+", help="sequence folder(s), or folders of sequences"
    )
    p.add_argument("--out", required=True, type=Path, help="output scene folder (or parent with --batch)")
    p.add_argument("--batch", action="store_true", help="--out is a parent; each input goes to out/<name>")
    p.add_argument("--layout", default="auto", choices=["auto", *LAYOUTS])
    p.add_argument("--intrinsics", type=Path, help="3x3 (or 4x4) intrinsics text file")
    p.add_argument("--fx", type=float)
    p.add_argument("--fy", type=float)
    p.add_argument("--cx", type=float)
    p.add_argument("--cy", type=float)
    p.add_argument("--depth-format", default=None, help="mm | scale:<units per metre> | sunrgbd | nyu-raw")
    p.add_argument(
        "--trajectory", type=Path, help="the pose file to use (.log, groundtruth.txt, gt_pose.txt)"
    )
    p.add_argument("--frame-skip", type=int, default=1)
    p.add_argument("--max-frames", type=int, default=None)
    p.add_argument("--workers", type=int, default=1)
    p.add_argument("--overwrite", action="store_true")
    p.add_argument("-v", "--verbose", action="store_true")
    a = p.parse_args(argv)
    setup_logging(a.verbose)
    K = None
    if a.intrinsics:
        K = read_intrinsics_txt(a.intrinsics)
    elif a.fx is not None:
        if None in (a.fy, a.cx, a.cy):
            p.error("--fx needs --fy, --cx and --cy")
        K = np.array([[a.fx, 0, a.cx], [0, a.fy, a.cy], [0, 0, 1.0]])
    inputs = [s for i in a.input for s in find_sequences(i)] if a.batch else a.input
    if len(inputs) > 1 and not a.batch:
        p.error("several --input folders need --batch")
    common = {
        "layout": a.layout,
        "intrinsics": K,
        "depth_format": a.depth_format,
        "frame_skip": a.frame_skip,
        "trajectory": a.trajectory,
        "max_frames": a.max_frames,
        "overwrite": a.overwrite,
    }
    jobs = [{"input": i, "out": a.out / i.name if a.batch else a.out, **common} for i in inputs]
    failed = 0
    for r in run_jobs(_export_job, jobs, workers=a.workers, desc="sequences", key=lambda j: str(j["input"])):
        if r.ok:
            log.info("%s: %d frames exported, %d skipped", r.key, r.value["frames"], r.value["skipped"])
        else:
            failed += 1
            log.error("%s failed: %s", r.key, r.error)
    return 1 if failed else 0
