"""Readers of camera trajectories and intrinsics that RGB-D sequences ship with.

Every pose returned here is a 4x4 **camera-to-world** matrix in metres (float64), unvalidated: the
exporter checks it (finite, rigid) and skips a frame with a bad one.

- Redwood / Open3D / ICL-NUIM ``*.log``: per frame a line ``id id n`` and the 4 matrix rows.
- Open3D ``PinholeCameraIntrinsic`` JSON; plain 3x3 / 4x4 intrinsics text files.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from pixvox.io.frames import FrameFormatError, parse_matrix


class SequenceError(ValueError):
    """The input folder does not match a supported layout (the message says what is missing)."""


def read_trajectory_log(path: str | Path) -> dict[int, np.ndarray]:
    """Parse a Redwood/Open3D ``.log`` trajectory into ``{frame id: 4x4 camera-to-world}``.

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


def read_intrinsics_txt(path: str | Path) -> np.ndarray:
    """A 3x3 pinhole matrix, or a 4x4 one whose top-left 3x3 is K, from a text file → float64 ``[3, 3]``."""
    path = Path(path)
    text = path.read_text()
    shape = (4, 4) if len(text.split()) == 16 else (3, 3)
    try:
        return parse_matrix(text, shape, path)[:3, :3]
    except FrameFormatError as err:
        raise SequenceError(str(err)) from err
