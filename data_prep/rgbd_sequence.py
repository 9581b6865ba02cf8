"""Export generic RGB-D sequences (color, depth, poses, intrinsics) to the exported-frames format.

Layouts (``--layout auto`` detects them in this order):

``7scenes``  one folder with ``frame-XXXXXX.color.{jpg,png}``, ``frame-XXXXXX.depth.png`` (mm,
             65535 = none) and ``frame-XXXXXX.pose.txt`` (4x4 camera-to-world). Intrinsics default to
             the dataset's published 585, 585, 320, 240 when none are given.
``redwood``  Redwood / Open3D / ICL-NUIM: a color folder (``image/``, ``color/`` or ``rgb/``), ``depth/``
             (16-bit PNG) and a ``*.log`` trajectory: per frame a line ``id id n`` and 4 rows of the
             camera-to-world matrix; entry ``id`` belongs to the id-th image in name order.
             Intrinsics from an Open3D ``camera*.json`` (``intrinsic_matrix`` column-major) if present.
``folders``  ``color/``, ``depth/``, ``pose/`` (one 4x4 text file per frame, matched by the number in the
             file name) and ``intrinsics.txt`` (3x3, or 4x4 whose top-left 3x3 is used).

Depth encodings (``--depth-format``): ``mm`` (default), ``scale:<units per metre>`` (TUM: ``scale:5000``),
``sunrgbd`` (3-bit circular shift) or ``nyu-raw`` (NYU raw Kinect PGM); see :mod:`pixvox.io.depth`.

Frame ids in the output are positions in the sequence (0, 1, ...; the id-th color image in name
order). Frames with a missing/corrupt file or a non-finite pose are skipped and listed with the
reason in ``frames.json``. Color images of another size than depth are resized to it (the camera
is assumed registered, i.e. same field of view).

CLI::

    python data_prep/rgbd_sequence.py --input ../shared/data/icl_livingroom1 --out data/frames/icl_lr1
    python data_prep/rgbd_sequence.py --input chess/seq-01 --out data/frames/chess_01 --frame-skip 10
"""

from __future__ import annotations

import argparse
import json
import logging
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

try:
    import pixvox  # noqa: F401
except ImportError:  # run from a source checkout without installing: use ./src
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from pixvox.io.depth import nyu_fix_byte_order, nyu_raw_to_mm, scale_to_mm, sunrgbd_to_mm  # noqa: E402
from pixvox.io.frames import (  # noqa: E402
    FrameFormatError,
    FrameSequence,
    FrameWriter,
    check_pose,
    is_complete_scene,
    parse_matrix,
    read_matrix_txt,
)
from pixvox.io.images import ImageReadError, read_color, read_depth_png, read_pgm16, resize_color  # noqa: E402
from pixvox.io.jobs import run_jobs, setup_logging  # noqa: E402

log = logging.getLogger("pixvox.data_prep.rgbd_sequence")

COLOR_EXTS = (".jpg", ".jpeg", ".png", ".ppm", ".bmp")
DEPTH_EXTS = (".png", ".pgm")
SEVEN_SCENES_K = np.array([[585.0, 0.0, 320.0], [0.0, 585.0, 240.0], [0.0, 0.0, 1.0]])


class SequenceError(ValueError):
    """The input folder does not match a supported layout (the message says what is missing)."""


# ---------------------------------------------------------------------------------------------- parsing


def read_trajectory_log(path: str | Path) -> dict[int, np.ndarray]:
    """Parse a Redwood/Open3D ``.log`` trajectory into ``{frame id: 4x4 camera-to-world}`` (unvalidated).

    Each entry is a header line of three integers (the first is the frame id) and four matrix rows.
    """
    path = Path(path)
    lines = [ln.strip() for ln in path.read_text().splitlines() if ln.strip()]
    if len(lines) % 5:
        raise SequenceError(
            f"{path}: {len(lines)} non-empty lines, not a multiple of 5 (header + 4 rows per frame)"
        )
    poses: dict[int, np.ndarray] = {}
    for e in range(len(lines) // 5):
        head = lines[5 * e].split()
        try:
            ids = [int(x) for x in head]
        except ValueError as err:
            raise SequenceError(
                f"{path}: line {5 * e + 1}: expected 'id id n' integers, got {lines[5 * e]!r}"
            ) from err
        if len(ids) != 3:
            raise SequenceError(f"{path}: line {5 * e + 1}: expected 3 integers, got {lines[5 * e]!r}")
        try:
            poses[ids[0]] = parse_matrix("\n".join(lines[5 * e + 1 : 5 * e + 5]), (4, 4), f"{path} entry {e}")
        except FrameFormatError as err:
            raise SequenceError(str(err)) from err
    return poses


def read_open3d_intrinsics(path: str | Path) -> tuple[np.ndarray, tuple[int, int]]:
    """Open3D ``PinholeCameraIntrinsic`` JSON → (3x3 K, (height, width)).

    Open3D stores ``intrinsic_matrix`` column-major (fx, 0, 0, 0, fy, 0, cx, cy, 1).
    """
    path = Path(path)
    try:
        d = json.loads(path.read_text())
        K = np.asarray(d["intrinsic_matrix"], dtype=np.float64).reshape(3, 3).T
        return K, (int(d["height"]), int(d["width"]))
    except (json.JSONDecodeError, KeyError, ValueError, TypeError) as err:
        raise SequenceError(f"{path}: not an Open3D camera intrinsics JSON ({err})") from err


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


_NUM = re.compile(r"(\d+)")


def _number(name: str) -> int | None:
    m = _NUM.findall(name)
    return int(m[-1]) if m else None


def _sorted_files(folder: Path, exts: tuple[str, ...]) -> list[Path]:
    files = [p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in exts]

    def key(p: Path) -> tuple[int, str]:
        n = _number(p.stem)
        return (n if n is not None else -1, p.name)

    return sorted(files, key=key)


# ----------------------------------------------------------------------------------------------- layouts


@dataclass
class FrameSource:
    """Where one input frame's data comes from (pose may be missing or invalid: the frame is then skipped)."""

    frame_id: int
    color: Path | None
    depth: Path | None
    pose: np.ndarray | Path | None


@dataclass
class SequenceLayout:
    """A detected input sequence: its frames, intrinsics (or None) and default depth format."""

    name: str
    frames: list[FrameSource]
    intrinsics: np.ndarray | None
    depth_format: str = "mm"
    invalid_depth_value: int | None = None


def detect_layout(folder: Path) -> str:
    if any(folder.glob("frame-*.pose.txt")):
        return "7scenes"
    if any(folder.glob("*.log")):
        return "redwood"
    if (folder / "pose").is_dir():
        return "folders"
    raise SequenceError(
        f"{folder}: no known layout (7-Scenes frame-*.pose.txt, a Redwood *.log trajectory, or color/ depth/ "
        "pose/ folders)"
    )


def _color_dir(folder: Path) -> Path:
    for name in ("image", "color", "rgb"):
        if (folder / name).is_dir():
            return folder / name
    raise SequenceError(f"{folder}: no color folder (image/, color/ or rgb/)")


def layout_7scenes(folder: Path) -> SequenceLayout:
    # Frame ids are the numbers in the file names; a frame whose pose file is missing is reported as skipped.
    poses = {p.name.split(".")[0]: p for p in folder.glob("frame-*.pose.txt")}
    colors = {p.name.split(".")[0]: p for p in folder.glob("frame-*.color.*")}
    frames = []
    for stem in sorted(set(poses) | set(colors)):
        n = _number(stem)
        if n is None:
            continue
        depth = folder / f"{stem}.depth.png"
        frames.append(FrameSource(n, colors.get(stem), depth if depth.exists() else None, poses.get(stem)))
    return SequenceLayout(folder.name, frames, None, "mm", invalid_depth_value=65535)


def layout_redwood(folder: Path, trajectory: Path | None = None) -> SequenceLayout:
    logs = [trajectory] if trajectory else sorted(folder.glob("*.log"))
    if trajectory is None and len(logs) > 1:
        preferred = [p for p in logs if p.name == "trajectory.log"]
        if not preferred:
            raise SequenceError(f"{folder}: several .log files {[p.name for p in logs]}; pass --trajectory")
        logs = preferred
    poses = read_trajectory_log(logs[0])
    colors = _sorted_files(_color_dir(folder), COLOR_EXTS)
    if not (folder / "depth").is_dir():
        raise SequenceError(f"{folder}: no depth/ folder")
    depths = _sorted_files(folder / "depth", DEPTH_EXTS)
    if len(colors) != len(depths):
        raise SequenceError(f"{folder}: {len(colors)} color images but {len(depths)} depth images")
    frames = [FrameSource(k, colors[k], depths[k], poses.get(k)) for k in range(len(colors))]
    K = None
    cams = sorted(folder.glob("camera*.json"))
    if cams:
        K, _ = read_open3d_intrinsics(cams[0])
    return SequenceLayout(folder.name, frames, K)


def layout_folders(folder: Path) -> SequenceLayout:
    colors = _sorted_files(_color_dir(folder), COLOR_EXTS)
    depth_dir = folder / "depth"
    if not depth_dir.is_dir():
        raise SequenceError(f"{folder}: no depth/ folder")
    depths = {_number(p.stem): p for p in _sorted_files(depth_dir, DEPTH_EXTS)}
    poses = {_number(p.stem): p for p in (folder / "pose").glob("*.txt")}
    frames = []
    for k, c in enumerate(colors):
        n = _number(c.stem)
        frames.append(FrameSource(k, c, depths.get(n), poses.get(n)))
    K = None
    if (folder / "intrinsics.txt").is_file():
        text = (folder / "intrinsics.txt").read_text()
        count = len(text.split())
        K = parse_matrix(text, (4, 4) if count == 16 else (3, 3), folder / "intrinsics.txt")[:3, :3]
    return SequenceLayout(folder.name, frames, K)


def load_layout(folder: str | Path, layout: str = "auto", trajectory: Path | None = None) -> SequenceLayout:
    folder = Path(folder)
    if not folder.is_dir():
        raise SequenceError(f"{folder}: folder not found")
    kind = detect_layout(folder) if layout == "auto" else layout
    if kind == "7scenes":
        return layout_7scenes(folder)
    if kind == "redwood":
        return layout_redwood(folder, trajectory)
    if kind == "folders":
        return layout_folders(folder)
    raise ValueError(f"unknown layout {layout!r} (auto, 7scenes, redwood, folders)")


# ------------------------------------------------------------------------------------------------ export


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
        if layout == "7scenes" or detect_layout(Path(input_dir)) == "7scenes":
            K = SEVEN_SCENES_K
        else:
            raise SequenceError(
                f"{input_dir}: no intrinsics found (camera*.json / intrinsics.txt); "
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
    source = f"rgbd_sequence:{Path(input_dir).name}"
    w = FrameWriter(out, source=source, intrinsics=K, meta=meta)
    for f in chosen:
        try:
            color, depth, pose = _read_frame(f, read_depth, seq.invalid_depth_value)
        except (FrameFormatError, ImageReadError, SequenceError, ValueError, OSError) as err:
            w.skip(f.frame_id, str(err))
            log.debug("skip frame %d: %s", f.frame_id, err)
            continue
        w.add(f.frame_id, color, depth, pose)
    info = w.finish()
    if info["skipped"]:
        log.info("%s: exported %d frames, skipped %d", out, len(info["frames"]), len(info["skipped"]))
    return info


def _read_frame(
    f: FrameSource, read_depth: Callable[[Path], np.ndarray], invalid_value: int | None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    if f.pose is None:
        raise SequenceError(f"frame {f.frame_id}: no pose (missing pose file or trajectory entry)")
    if isinstance(f.pose, Path):
        pose = check_pose(read_matrix_txt(f.pose, (4, 4)), f.pose)
    else:
        pose = check_pose(f.pose, f"trajectory entry {f.frame_id}")
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
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--input", required=True, type=Path, nargs="+", help="sequence folder(s)")
    p.add_argument("--out", required=True, type=Path, help="output scene folder (or parent with --batch)")
    p.add_argument("--batch", action="store_true", help="--out is a parent; each input goes to out/<name>")
    p.add_argument("--layout", default="auto", choices=["auto", "7scenes", "redwood", "folders"])
    p.add_argument("--intrinsics", type=Path, help="3x3 (or 4x4) intrinsics text file")
    p.add_argument("--fx", type=float)
    p.add_argument("--fy", type=float)
    p.add_argument("--cx", type=float)
    p.add_argument("--cy", type=float)
    p.add_argument("--depth-format", default=None, help="mm | scale:<units per metre> | sunrgbd | nyu-raw")
    p.add_argument("--trajectory", type=Path, help="the .log file to use (Redwood layout)")
    p.add_argument("--frame-skip", type=int, default=1)
    p.add_argument("--max-frames", type=int, default=None)
    p.add_argument("--workers", type=int, default=1)
    p.add_argument("--overwrite", action="store_true")
    p.add_argument("-v", "--verbose", action="store_true")
    a = p.parse_args(argv)
    setup_logging(a.verbose)
    K = None
    if a.intrinsics:
        text = a.intrinsics.read_text()
        K = parse_matrix(text, (4, 4) if len(text.split()) == 16 else (3, 3), a.intrinsics)[:3, :3]
    elif a.fx is not None:
        if None in (a.fy, a.cx, a.cy):
            p.error("--fx needs --fy, --cx and --cy")
        K = np.array([[a.fx, 0, a.cx], [0, a.fy, a.cy], [0, 0, 1.0]])
    if len(a.input) > 1 and not a.batch:
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
    jobs = [{"input": i, "out": a.out / i.name if a.batch else a.out, **common} for i in a.input]
    failed = 0
    for r in run_jobs(_export_job, jobs, workers=a.workers, desc="sequences", key=lambda j: str(j["input"])):
        if r.ok:
            log.info("%s: %d frames exported, %d skipped", r.key, r.value["frames"], r.value["skipped"])
        else:
            failed += 1
            log.error("%s failed: %s", r.key, r.error)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
