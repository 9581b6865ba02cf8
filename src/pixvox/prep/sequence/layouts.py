"""RGB-D sequence layouts: find each frame's color, depth and pose, and the camera intrinsics.

``--layout auto`` (:func:`detect_layout`) checks them in this order:

``7scenes``        7-Scenes: ``frame-XXXXXX.color.{png,jpg}``,
                   ``frame-XXXXXX.depth.png`` (mm, 65535 = none), ``frame-XXXXXX.pose.txt`` (4x4
                   camera-to-world); intrinsics 7-Scenes' published 585, 585, 320, 240.
``redwood``        Redwood / Open3D / ICL-NUIM: a color folder (``image/``, ``color/`` or ``rgb/``),
                   ``depth/`` (16-bit PNG) and a ``*.log`` trajectory; entry ``id`` is the id-th image in
                   name order. Intrinsics from an Open3D ``camera*.json`` if present.
``folders``        ``color/``, ``depth/``, ``pose/`` (one 4x4 text file per frame, matched by the number
                   in the file name) and ``intrinsics.txt`` (3x3, or 4x4 whose top-left 3x3 is used).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pixvox.prep.sequence.trajectories import (
    SequenceError,
    read_intrinsics_txt,
    read_open3d_intrinsics,
    read_trajectory_log,
)

COLOR_EXTS = (".jpg", ".jpeg", ".png", ".ppm", ".bmp")
DEPTH_EXTS = (".png", ".pgm")
SEVEN_SCENES_K = np.array([[585.0, 0.0, 320.0], [0.0, 585.0, 240.0], [0.0, 0.0, 1.0]])
LAYOUTS = ("7scenes", "redwood", "folders")


@dataclass
class FrameSource:
    """Where one input frame's data comes from. ``pose`` is a matrix, a pose file, or None with
    ``missing`` saying why (the frame is then skipped with that reason)."""

    frame_id: int
    color: Path | None
    depth: Path | None
    pose: np.ndarray | Path | None
    missing: str = "no pose (missing pose file or trajectory entry)"


@dataclass
class SequenceLayout:
    """A detected input sequence: its frames, intrinsics (or None) and default depth format."""

    name: str
    kind: str
    frames: list[FrameSource]
    intrinsics: np.ndarray | None
    depth_format: str = "mm"
    invalid_depth_value: int | None = None


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


def _color_dir(folder: Path) -> Path:
    for name in ("image", "color", "rgb"):
        if (folder / name).is_dir():
            return folder / name
    raise SequenceError(f"{folder}: no color folder (image/, color/ or rgb/)")


def _depth_files(folder: Path) -> list[Path]:
    if not (folder / "depth").is_dir():
        raise SequenceError(f"{folder}: no depth/ folder")
    return _sorted_files(folder / "depth", DEPTH_EXTS)


def _intrinsics_file(folder: Path, names: tuple[str, ...]) -> np.ndarray | None:
    for name in names:
        if (folder / name).is_file():
            return read_intrinsics_txt(folder / name)
    return None


def detect_layout(folder: Path) -> str:
    """The layout name of a sequence folder (see the module docstring), or a :class:`SequenceError`."""
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
    K = SEVEN_SCENES_K
    return SequenceLayout(folder.name, "7scenes", frames, K, "mm", invalid_depth_value=65535)


def layout_redwood(folder: Path, trajectory: Path | None = None) -> SequenceLayout:
    logs = [trajectory] if trajectory else sorted(folder.glob("*.log"))
    if trajectory is None and len(logs) > 1:
        preferred = [p for p in logs if p.name == "trajectory.log"]
        if not preferred:
            raise SequenceError(f"{folder}: several .log files {[p.name for p in logs]}; pass --trajectory")
        logs = preferred
    poses = read_trajectory_log(logs[0])
    colors = _sorted_files(_color_dir(folder), COLOR_EXTS)
    depths = _depth_files(folder)
    if len(colors) != len(depths):
        raise SequenceError(f"{folder}: {len(colors)} color images but {len(depths)} depth images")
    frames = [FrameSource(k, colors[k], depths[k], poses.get(k)) for k in range(len(colors))]
    K = None
    cams = sorted(folder.glob("camera*.json"))
    if cams:
        K, _ = read_open3d_intrinsics(cams[0])
    return SequenceLayout(folder.name, "redwood", frames, K)


def layout_folders(folder: Path) -> SequenceLayout:
    colors = _sorted_files(_color_dir(folder), COLOR_EXTS)
    depths = {_number(p.stem): p for p in _depth_files(folder)}
    poses = {_number(p.stem): p for p in (folder / "pose").glob("*.txt")}
    frames = []
    for k, c in enumerate(colors):
        n = _number(c.stem)
        frames.append(FrameSource(k, c, depths.get(n), poses.get(n)))
    K = _intrinsics_file(folder, ("intrinsics.txt",))
    return SequenceLayout(folder.name, "folders", frames, K)


def load_layout(folder: str | Path, layout: str = "auto", trajectory: Path | None = None) -> SequenceLayout:
    """Read the frame list of the sequence in ``folder`` (``layout``: auto or one of :data:`LAYOUTS`);
    ``trajectory`` picks the pose file where a layout could use several."""
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
    raise ValueError(f"unknown layout {layout!r} (auto, {', '.join(LAYOUTS)})")
