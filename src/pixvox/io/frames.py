"""The exported RGB-D frames format: one folder per scene, written by every reader in :mod:`pixvox.prep`.

Layout (see docs/data.md)::

    <scene>/color/000000.jpg    uint8 RGB registered to the depth camera (same H x W as depth)
    <scene>/depth/000000.png    uint16 millimetres, 0 = no depth
    <scene>/pose/000000.txt     4 x 4 camera-to-world, metres, whitespace separated
    <scene>/intrinsics.txt      3 x 3 pinhole intrinsics of the (registered) depth camera, pixels
    <scene>/frames.json         {"source", "frames": [ids], "skipped": [{"frame", "reason"}], "meta"?}

``frames.json`` is written last and atomically: a folder without it is an incomplete export.

Writing: :class:`FrameWriter`. Reading: :class:`FrameSequence` (validates every file it reads and
raises :class:`FrameFormatError` subclasses naming the file). Resizing: :func:`resize_frame`.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from pixvox.errors import UserError
from pixvox.io.atomic import atomic_write_json, atomic_write_text, remove_stale_temp_files
from pixvox.io.images import (
    ImageReadError,
    read_color,
    read_depth_png,
    resize_color,
    resize_depth_nearest,
    write_color,
    write_depth_png,
)

FRAMES_JSON = "frames.json"
INTRINSICS_TXT = "intrinsics.txt"
COLOR_QUALITY = 95


class FrameFormatError(UserError, ValueError):
    """An exported-frames folder or one of its files is missing or malformed (message names the file)."""


class InvalidPoseError(FrameFormatError):
    """A camera pose is not a finite rigid 4 x 4 transform (e.g. ScanNet's -inf poses)."""


@dataclass
class RGBDFrame:
    """One registered RGB-D frame.

    Attributes:
        frame_id: the frame's number (file stem) in its scene.
        color: uint8 ``[H, W, 3]`` RGB, pixel-aligned with ``depth_mm``.
        depth_mm: uint16 ``[H, W]`` depth in millimetres, 0 = none.
        cam_to_world: float64 ``[4, 4]`` camera-to-world pose in metres.
        intrinsics: float64 ``[3, 3]`` pinhole intrinsics in pixels.
    """

    frame_id: int
    color: np.ndarray
    depth_mm: np.ndarray
    cam_to_world: np.ndarray
    intrinsics: np.ndarray

    @property
    def size_hw(self) -> tuple[int, int]:
        return int(self.depth_mm.shape[0]), int(self.depth_mm.shape[1])


# --------------------------------------------------------------------------------------------- matrices


def format_matrix(m: np.ndarray) -> str:
    """Whitespace-separated rows with shortest round-trip float repr (reads back bit-exactly)."""
    return "".join(" ".join(repr(float(x)) for x in row) + "\n" for row in np.asarray(m, dtype=np.float64))


def parse_matrix(text: str, shape: tuple[int, int], source: str | os.PathLike) -> np.ndarray:
    """Parse whitespace/comma-separated numbers into a float64 matrix of ``shape``.

    Accepts ``shape`` exactly; for ``(4, 4)`` also a 3 x 4 matrix (the bottom row [0, 0, 0, 1] is
    added). ``inf``/``nan`` tokens are parsed (poses are then rejected by :func:`check_pose`).
    """
    try:
        values = np.array([float(t) for t in text.replace(",", " ").split()], dtype=np.float64)
    except ValueError as err:
        raise FrameFormatError(f"{source}: non-numeric value in matrix file ({err})") from err
    rows, cols = shape
    if values.size == rows * cols:
        return values.reshape(rows, cols)
    if shape == (4, 4) and values.size == 12:
        return np.vstack([values.reshape(3, 4), [0.0, 0.0, 0.0, 1.0]])
    raise FrameFormatError(
        f"{source}: expected a {rows}x{cols} matrix ({rows * cols} numbers), found {values.size}"
    )


def read_matrix_txt(path: str | os.PathLike, shape: tuple[int, int]) -> np.ndarray:
    """Read a whitespace-separated matrix text file as float64 ``shape``."""
    try:
        text = Path(path).read_text()
    except FileNotFoundError as err:
        raise FrameFormatError(f"{path}: file not found") from err
    except UnicodeDecodeError as err:
        raise FrameFormatError(f"{path}: not a text file") from err
    return parse_matrix(text, shape, path)


def check_pose(pose: np.ndarray, source: str | os.PathLike, tol: float = 1e-3) -> np.ndarray:
    """Validate a camera-to-world pose and return it as float64 ``[4, 4]``.

    It must be finite, have bottom row [0, 0, 0, 1] and an orthonormal rotation with det +1 (within
    ``tol``); otherwise :class:`InvalidPoseError` is raised.
    """
    T = np.asarray(pose, dtype=np.float64)
    if T.shape != (4, 4):
        raise InvalidPoseError(f"{source}: pose must be 4x4, got shape {T.shape}")
    if not np.isfinite(T).all():
        raise InvalidPoseError(f"{source}: pose has non-finite values (tracking lost; frame must be skipped)")
    if np.abs(T[3] - np.array([0.0, 0.0, 0.0, 1.0])).max() > 1e-6:
        raise InvalidPoseError(f"{source}: pose bottom row is {T[3].tolist()}, expected [0, 0, 0, 1]")
    R = T[:3, :3]
    err = np.abs(R.T @ R - np.eye(3)).max()
    if err > tol or np.linalg.det(R) < 0:
        raise InvalidPoseError(
            f"{source}: pose rotation is not orthonormal with det +1 (|R^T R - I| = {err:.2e}, "
            f"det = {np.linalg.det(R):.4f}); is it a projection or a world-to-camera matrix with scale?"
        )
    return T


def check_intrinsics(K: np.ndarray, source: str | os.PathLike) -> np.ndarray:
    """Validate pinhole intrinsics: float64 ``[3, 3]``, finite, fx, fy > 0, bottom row [0, 0, 1]."""
    K = np.asarray(K, dtype=np.float64)
    if K.shape != (3, 3) or not np.isfinite(K).all():
        raise FrameFormatError(f"{source}: intrinsics must be a finite 3x3 matrix, got {K.tolist()}")
    if K[0, 0] <= 0 or K[1, 1] <= 0 or np.abs(K[2] - np.array([0.0, 0.0, 1.0])).max() > 1e-9 or K[1, 0] != 0:
        raise FrameFormatError(
            f"{source}: intrinsics {K.tolist()} are not [[fx, s, cx], [0, fy, cy], [0, 0, 1]] with fx, fy > 0"
        )
    return K


def scale_intrinsics(K: np.ndarray, src_hw: tuple[int, int], dst_hw: tuple[int, int]) -> np.ndarray:
    """Intrinsics after resizing an image from ``src_hw`` to ``dst_hw`` (pixel centres at integers).

    With scale ``s = W'/W``: ``fx' = s fx`` and ``cx' = s (cx + 0.5) - 0.5`` (same for y with H'/H),
    so a 3D point lands on the same spot of the scene in both images.
    """
    K = np.asarray(K, dtype=np.float64).copy()
    sy = dst_hw[0] / src_hw[0]
    sx = dst_hw[1] / src_hw[1]
    K[0, 0] *= sx
    K[0, 1] *= sx
    K[0, 2] = sx * (K[0, 2] + 0.5) - 0.5
    K[1, 1] *= sy
    K[1, 2] = sy * (K[1, 2] + 0.5) - 0.5
    return K


def resize_frame(frame: RGBDFrame, size_hw: tuple[int, int]) -> RGBDFrame:
    """Resize color (bilinear) and depth (nearest) to ``size_hw`` = (H, W), scaling the intrinsics."""
    if frame.size_hw == tuple(size_hw):
        return frame
    return RGBDFrame(
        frame_id=frame.frame_id,
        color=resize_color(frame.color, size_hw),
        depth_mm=resize_depth_nearest(frame.depth_mm, size_hw),
        cam_to_world=frame.cam_to_world,
        intrinsics=scale_intrinsics(frame.intrinsics, frame.size_hw, size_hw),
    )


# ------------------------------------------------------------------------------------------------ paths


def frame_name(frame_id: int) -> str:
    """6-digit file stem of a frame id."""
    if frame_id < 0 or frame_id > 999_999:
        raise ValueError(f"frame id {frame_id} does not fit the 6-digit file names (0..999999)")
    return f"{frame_id:06d}"


def frame_paths(scene_dir: str | os.PathLike, frame_id: int) -> dict[str, Path]:
    """Paths of one frame's ``color``, ``depth`` and ``pose`` files."""
    d = Path(scene_dir)
    n = frame_name(frame_id)
    return {
        "color": d / "color" / f"{n}.jpg",
        "depth": d / "depth" / f"{n}.png",
        "pose": d / "pose" / f"{n}.txt",
    }


def is_complete_scene(scene_dir: str | os.PathLike) -> bool:
    """Whether ``scene_dir`` holds a finished export (its ``frames.json`` exists)."""
    return (Path(scene_dir) / FRAMES_JSON).is_file()


def find_scene_dirs(root: str | os.PathLike) -> tuple[list[Path], list[Path]]:
    """Complete and incomplete exported-scene folders under ``root`` (``root`` itself if it is one).

    Returns ``(complete, incomplete)``, each sorted by name. A child counts as an incomplete scene if
    it has a ``color/``, ``depth/`` or ``pose/`` folder but no ``frames.json``.
    """
    root = Path(root)
    if not root.is_dir():
        raise FrameFormatError(f"{root}: folder not found (expected exported frames)")
    if is_complete_scene(root):
        return [root], []
    complete, incomplete = [], []
    for child in sorted(p for p in root.iterdir() if p.is_dir()):
        if is_complete_scene(child):
            complete.append(child)
        elif any((child / sub).is_dir() for sub in ("color", "depth", "pose")):
            incomplete.append(child)
    return complete, incomplete


# ----------------------------------------------------------------------------------------------- writer


class FrameWriter:
    """Write one scene in the exported-frames format.

    Usage::

        with FrameWriter(out / scene, source="scannet:scene0000_00.sens", intrinsics=K) as w:
            w.add(frame_id, color, depth_mm, cam_to_world)
            w.skip(other_id, "invalid pose")
        # frames.json is written on a clean exit only

    Every file is written atomically; ``frames.json`` (last) marks the scene complete. Starting a
    writer on a complete folder first removes its ``frames.json``, so the folder reads as incomplete
    until the new export finishes.
    """

    def __init__(
        self,
        scene_dir: str | os.PathLike,
        source: str,
        intrinsics: np.ndarray | None = None,
        meta: dict[str, Any] | None = None,
        color_quality: int = COLOR_QUALITY,
    ) -> None:
        self.scene_dir = Path(scene_dir)
        self.source = source
        self.meta = dict(meta) if meta else None
        self.color_quality = color_quality
        self.intrinsics = None if intrinsics is None else check_intrinsics(intrinsics, f"{source} intrinsics")
        self.frames: list[int] = []
        self.skipped: list[dict[str, Any]] = []
        self._size_hw: tuple[int, int] | None = None
        self._finished = False
        (self.scene_dir / FRAMES_JSON).unlink(missing_ok=True)
        for sub in ("color", "depth", "pose"):
            (self.scene_dir / sub).mkdir(parents=True, exist_ok=True)
        remove_stale_temp_files(self.scene_dir, recursive=True)  # left by a killed export; one writer a scene

    def set_intrinsics(self, K: np.ndarray) -> None:
        """Set the scene's 3 x 3 intrinsics (before :meth:`finish`)."""
        self.intrinsics = check_intrinsics(K, f"{self.source} intrinsics")

    def add(self, frame_id: int, color: np.ndarray, depth_mm: np.ndarray, cam_to_world: np.ndarray) -> None:
        """Validate and write one frame: uint8 ``[H, W, 3]`` color, uint16 ``[H, W]`` mm depth, 4 x 4 pose."""
        where = f"{self.source} frame {frame_id}"
        if color.dtype != np.uint8 or color.ndim != 3 or color.shape[2] != 3:
            raise FrameFormatError(f"{where}: color must be uint8 [H, W, 3], got {color.dtype} {color.shape}")
        if depth_mm.dtype != np.uint16 or depth_mm.ndim != 2:
            raise FrameFormatError(
                f"{where}: depth must be uint16 [H, W] mm, got {depth_mm.dtype} {depth_mm.shape}"
            )
        if color.shape[:2] != depth_mm.shape:
            raise FrameFormatError(
                f"{where}: color {color.shape[:2]} and depth {depth_mm.shape} differ; "
                "register color to depth first"
            )
        if self._size_hw is None:
            self._size_hw = depth_mm.shape
        elif depth_mm.shape != self._size_hw:
            raise FrameFormatError(
                f"{where}: size {depth_mm.shape} differs from earlier frames {self._size_hw}"
            )
        T = check_pose(cam_to_world, where)
        if frame_id in self.frames:
            raise FrameFormatError(f"{where}: frame id written twice")
        paths = frame_paths(self.scene_dir, frame_id)
        write_color(paths["color"], color, quality=self.color_quality)
        write_depth_png(paths["depth"], depth_mm)
        atomic_write_text(paths["pose"], format_matrix(T))
        self.frames.append(int(frame_id))

    def skip(self, frame_id: int, reason: str) -> None:
        """Record a frame that was not exported and why (kept in ``frames.json``)."""
        self.skipped.append({"frame": int(frame_id), "reason": reason})

    def finish(self) -> dict[str, Any]:
        """Write ``intrinsics.txt`` and then ``frames.json``; returns the frames.json content."""
        if self.intrinsics is None:
            raise FrameFormatError(f"{self.scene_dir}: intrinsics were never set")
        atomic_write_text(self.scene_dir / INTRINSICS_TXT, format_matrix(self.intrinsics))
        info: dict[str, Any] = {"source": self.source, "frames": sorted(self.frames), "skipped": self.skipped}
        if self.meta:
            info["meta"] = self.meta
        # No fsync: the frame files are not fsynced either; atomicity against crashes comes from the rename.
        atomic_write_json(self.scene_dir / FRAMES_JSON, info, fsync=False)
        self._finished = True
        return info

    def __enter__(self) -> FrameWriter:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None and not self._finished:
            self.finish()


# ----------------------------------------------------------------------------------------------- reader


class FrameSequence:
    """Read one exported scene folder.

    Attributes:
        scene_dir: the folder; ``name`` its folder name.
        frame_ids: sorted list of exported frame ids.
        skipped: ``[{"frame", "reason"}]`` frames the exporter skipped.
        source, meta: from ``frames.json``.
        intrinsics: float64 ``[3, 3]``.

    ``seq.read(frame_id)`` returns a validated :class:`RGBDFrame`; ``len(seq)`` and iteration go over
    the exported frames in id order.
    """

    def __init__(self, scene_dir: str | os.PathLike) -> None:
        self.scene_dir = Path(scene_dir)
        self.name = self.scene_dir.name
        info_path = self.scene_dir / FRAMES_JSON
        if not info_path.is_file():
            raise FrameFormatError(
                f"{info_path}: missing, so {self.scene_dir} is an incomplete export; "
                "rerun its reader (python -m pixvox.prep <dataset>)"
            )
        try:
            info = json.loads(info_path.read_text())
            frames = [int(i) for i in info["frames"]]
            self.skipped = list(info.get("skipped", []))
            self.source = str(info.get("source", ""))
        except (json.JSONDecodeError, KeyError, TypeError, ValueError) as err:
            raise FrameFormatError(f"{info_path}: malformed ({err}); rerun the export") from err
        self.meta = dict(info.get("meta") or {})
        self.frame_ids = sorted(frames)
        self.intrinsics = check_intrinsics(
            read_matrix_txt(self.scene_dir / INTRINSICS_TXT, (3, 3)), self.scene_dir / INTRINSICS_TXT
        )

    def __len__(self) -> int:
        return len(self.frame_ids)

    def __iter__(self) -> Iterator[RGBDFrame]:
        for i in self.frame_ids:
            yield self.read(i)

    def read_pose(self, frame_id: int) -> np.ndarray:
        """float64 ``[4, 4]`` camera-to-world of one frame (validated)."""
        p = frame_paths(self.scene_dir, frame_id)["pose"]
        return check_pose(read_matrix_txt(p, (4, 4)), p)

    def read(self, frame_id: int) -> RGBDFrame:
        """Read and validate one frame; raises :class:`FrameFormatError` naming the bad file."""
        paths = frame_paths(self.scene_dir, frame_id)
        try:
            color = read_color(paths["color"])
            depth = read_depth_png(paths["depth"])
        except ImageReadError as err:
            raise FrameFormatError(str(err)) from err
        if color.shape[:2] != depth.shape:
            raise FrameFormatError(
                f"{paths['color']}: size {color.shape[:2]} differs from its depth {depth.shape} "
                f"({paths['depth']}); the export is inconsistent, rerun it"
            )
        return RGBDFrame(frame_id, color, depth, self.read_pose(frame_id), self.intrinsics.copy())
