"""RGB-D sequence layouts: find each frame's color, depth and pose, and the camera intrinsics.

``--layout auto`` (:func:`detect_layout`) checks them in this order:

``tum``            TUM RGB-D: ``rgb.txt`` and ``depth.txt`` (``timestamp filename``), ``groundtruth.txt``
                   (TUM trajectory). Depth is matched to color by the nearest timestamp (≤ 20 ms, one to
                   one) and the pose is interpolated at the depth timestamp; depth 5000 units/m;
                   intrinsics 525, 525, 319.5, 239.5 (TUM's registered depth) unless a file gives them.
``7scenes``        7-Scenes / SUN3D / 3DMatch fragments: ``frame-XXXXXX.color.{png,jpg}``,
                   ``frame-XXXXXX.depth.png`` (mm, 65535 = none), ``frame-XXXXXX.pose.txt`` (4x4
                   camera-to-world); intrinsics from ``camera-intrinsics.txt`` (3x3) when present, else
                   7-Scenes' published 585, 585, 320, 240.
``redwood``        Redwood / Open3D / ICL-NUIM: a color folder (``image/``, ``color/`` or ``rgb/``),
                   ``depth/`` (16-bit PNG) and a ``*.log`` trajectory; entry ``id`` is the id-th image in
                   name order. Intrinsics from an Open3D ``camera*.json`` if present.
``scannet-export`` ScanNet frames as SLAM projects export them: ``rgb/``, ``depth/`` (16-bit PNG, mm),
                   ``intrinsic.txt`` (4x4 or 3x3) and ``gt_pose.txt`` (TUM trajectory, one line per
                   frame in image name order; the timestamps are not used).
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
    associate,
    interpolate_pose,
    read_intrinsics_txt,
    read_open3d_intrinsics,
    read_trajectory_log,
    read_tum_list,
    read_tum_trajectory,
)

COLOR_EXTS = (".jpg", ".jpeg", ".png", ".ppm", ".bmp")
DEPTH_EXTS = (".png", ".pgm")
SEVEN_SCENES_K = np.array([[585.0, 0.0, 320.0], [0.0, 585.0, 240.0], [0.0, 0.0, 1.0]])
#: TUM's intrinsics for its depth images, which the Kinect driver registered to the color camera.
TUM_K = np.array([[525.0, 0.0, 319.5], [0.0, 525.0, 239.5], [0.0, 0.0, 1.0]])
#: Largest color/depth timestamp difference matched in the TUM layout (seconds; TUM's associate.py).
TUM_MAX_DIFFERENCE = 0.02
#: Largest gap between the two ground-truth poses a TUM frame's pose is interpolated from (seconds).
TUM_MAX_POSE_GAP = 0.1
LAYOUTS = ("tum", "7scenes", "redwood", "scannet-export", "folders")


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
    trajectory: Path | None = None  #: the pose file of layouts that read poses from one file


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
    if (folder / "rgb.txt").is_file() and (folder / "depth.txt").is_file():
        return "tum"
    if any(folder.glob("frame-*.pose.txt")):
        return "7scenes"
    if any(folder.glob("*.log")):
        return "redwood"
    if (folder / "gt_pose.txt").is_file():
        return "scannet-export"
    if (folder / "pose").is_dir():
        return "folders"
    raise SequenceError(
        f"{folder}: no known layout (TUM rgb.txt + depth.txt, 7-Scenes frame-*.pose.txt, a Redwood *.log "
        "trajectory, a ScanNet export's gt_pose.txt, or color/ depth/ pose/ folders)"
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
    K = _intrinsics_file(folder, ("camera-intrinsics.txt",))
    K = SEVEN_SCENES_K if K is None else K
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
    return SequenceLayout(folder.name, "redwood", frames, K, trajectory=logs[0])


def layout_scannet_export(folder: Path, trajectory: Path | None = None) -> SequenceLayout:
    traj = trajectory or folder / "gt_pose.txt"
    _, poses = read_tum_trajectory(traj)
    colors = _sorted_files(_color_dir(folder), COLOR_EXTS)
    depths = _depth_files(folder)
    if len(colors) != len(depths):
        raise SequenceError(f"{folder}: {len(colors)} color images but {len(depths)} depth images")
    if len(poses) != len(colors):
        raise SequenceError(
            f"{traj}: {len(poses)} poses for {len(colors)} frames; this layout needs one pose line per "
            "image, in image name order"
        )
    frames = [FrameSource(k, colors[k], depths[k], poses[k]) for k in range(len(colors))]
    K = _intrinsics_file(folder, ("intrinsic.txt", "intrinsics.txt"))
    return SequenceLayout(folder.name, "scannet-export", frames, K, trajectory=traj)


def layout_tum(folder: Path, trajectory: Path | None = None) -> SequenceLayout:
    rgb = read_tum_list(folder / "rgb.txt")
    depth = read_tum_list(folder / "depth.txt")
    traj = trajectory or folder / "groundtruth.txt"
    stamps, poses = read_tum_trajectory(traj)
    order = np.argsort(stamps, kind="stable")
    stamps, poses = stamps[order], poses[order]
    t_rgb = np.array([t for t, _ in rgb])
    t_depth = np.array([t for t, _ in depth])
    match = associate(t_rgb, t_depth, TUM_MAX_DIFFERENCE)
    frames = []
    for k, (_, color_name) in enumerate(rgb):
        j = match.get(k)
        if j is None:
            why = f"no depth image within {TUM_MAX_DIFFERENCE * 1000:.0f} ms of color {color_name}"
            frames.append(FrameSource(k, folder / color_name, None, None, why))
            continue
        pose = interpolate_pose(stamps, poses, t_depth[j], TUM_MAX_POSE_GAP)
        why = f"no ground-truth pose within {TUM_MAX_POSE_GAP * 1000:.0f} ms around time {t_depth[j]:.4f}"
        frames.append(FrameSource(k, folder / color_name, folder / depth[j][1], pose, why))
    K = _intrinsics_file(folder, ("intrinsics.txt", "camera-intrinsics.txt"))
    return SequenceLayout(
        folder.name, "tum", frames, TUM_K if K is None else K, "scale:5000", trajectory=traj
    )


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
    if kind == "tum":
        return layout_tum(folder, trajectory)
    if kind == "7scenes":
        return layout_7scenes(folder)
    if kind == "redwood":
        return layout_redwood(folder, trajectory)
    if kind == "scannet-export":
        return layout_scannet_export(folder, trajectory)
    if kind == "folders":
        return layout_folders(folder)
    raise ValueError(f"unknown layout {layout!r} (auto, {', '.join(LAYOUTS)})")


def find_sequences(folder: str | Path) -> list[Path]:
    """``folder`` itself if it holds a sequence of a known layout, else its subfolders that do (sorted);
    e.g. ``sun3d_fragments/`` with one 7-Scenes-style folder per fragment. Raises when there is none."""
    folder = Path(folder)
    if not folder.is_dir():
        raise SequenceError(f"{folder}: folder not found")
    try:
        detect_layout(folder)
        return [folder]
    except SequenceError as err:
        subs = []
        for sub in sorted(p for p in folder.iterdir() if p.is_dir()):
            try:
                detect_layout(sub)
                subs.append(sub)
            except SequenceError:
                continue
        if not subs:
            raise SequenceError(f"{err}; none of its subfolders holds a sequence either") from None
        return subs
