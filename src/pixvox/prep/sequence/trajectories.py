"""Readers of camera trajectories, timestamp lists and intrinsics that RGB-D sequences ship with.

Every pose returned here is a 4x4 **camera-to-world** matrix in metres (float64), unvalidated: the
exporter checks it (finite, rigid) and skips a frame with a bad one.

- Redwood / Open3D / ICL-NUIM ``*.log``: per frame a line ``id id n`` and the 4 matrix rows.
- TUM format (``groundtruth.txt``, ``gt_pose.txt``): ``timestamp tx ty tz qx qy qz qw`` per line,
  ``#`` comments; the quaternion (x, y, z, w) is the camera's orientation in the world.
- TUM image lists (``rgb.txt``, ``depth.txt``): ``timestamp filename`` per line.
- Open3D ``PinholeCameraIntrinsic`` JSON; plain 3x3 / 4x4 intrinsics text files.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from scipy.spatial.transform import Rotation, Slerp

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


def _data_lines(path: Path) -> list[tuple[int, list[str]]]:
    """(1-based line number, whitespace-split fields) of the non-empty, non-comment lines."""
    if not path.is_file():
        raise SequenceError(f"{path}: file not found")
    out = []
    for i, line in enumerate(path.read_text().splitlines(), start=1):
        text = line.strip()
        if text and not text.startswith("#"):
            out.append((i, text.split()))
    return out


def read_tum_trajectory(path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """TUM-format trajectory → timestamps float64 ``[M]`` (seconds) and camera-to-world ``[M, 4, 4]``.

    Lines ``timestamp tx ty tz qx qy qz qw`` (metres; unit quaternion x, y, z, w), in file order.
    A line with another number of fields, a non-number or a zero quaternion is an error naming the line.
    """
    path = Path(path)
    stamps, poses = [], []
    for n, fields in _data_lines(path):
        if len(fields) != 8:
            raise SequenceError(
                f"{path}: line {n}: expected 8 numbers 'timestamp tx ty tz qx qy qz qw', got {len(fields)}"
            )
        try:
            vals = np.array([float(x) for x in fields])
        except ValueError as err:
            raise SequenceError(f"{path}: line {n}: not a number ({err})") from err
        q = vals[4:8]
        if not np.isfinite(vals).all() or np.linalg.norm(q) < 1e-6:
            raise SequenceError(f"{path}: line {n}: non-finite values or a zero quaternion")
        T = np.eye(4)
        T[:3, :3] = Rotation.from_quat(q).as_matrix()  # scipy's quaternion order is (x, y, z, w), as TUM's
        T[:3, 3] = vals[1:4]
        stamps.append(vals[0])
        poses.append(T)
    if not poses:
        raise SequenceError(f"{path}: no poses")
    return np.asarray(stamps), np.stack(poses)


def read_tum_list(path: str | Path) -> list[tuple[float, str]]:
    """TUM image list (``rgb.txt``, ``depth.txt``) → ``[(timestamp seconds, relative file name)]``."""
    path = Path(path)
    out = []
    for n, fields in _data_lines(path):
        if len(fields) != 2:
            raise SequenceError(f"{path}: line {n}: expected 'timestamp filename', got {' '.join(fields)!r}")
        try:
            out.append((float(fields[0]), fields[1]))
        except ValueError as err:
            raise SequenceError(f"{path}: line {n}: timestamp is not a number ({err})") from err
    return out


def associate(a: np.ndarray, b: np.ndarray, max_difference: float) -> dict[int, int]:
    """Match timestamps ``a`` to ``b`` one to one: ``{i: j}`` with ``|a[i] - b[j]| <= max_difference``
    (seconds), the closest pairs first (the rule of TUM's ``associate.py``); others stay unmatched."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    if a.size == 0 or b.size == 0:
        return {}
    order = np.argsort(b)
    bs = b[order]
    pairs = []
    for i, t in enumerate(a):
        lo = np.searchsorted(bs, t - max_difference, side="left")
        hi = np.searchsorted(bs, t + max_difference, side="right")
        pairs.extend((abs(t - bs[k]), i, int(order[k])) for k in range(lo, hi))
    used_a: set[int] = set()
    used_b: set[int] = set()
    out = {}
    for _, i, j in sorted(pairs):
        if i not in used_a and j not in used_b:
            out[i] = j
            used_a.add(i)
            used_b.add(j)
    return out


def interpolate_pose(stamps: np.ndarray, poses: np.ndarray, t: float, max_gap: float) -> np.ndarray | None:
    """Camera-to-world pose at time ``t`` (seconds): translation linear, rotation slerp between the two
    trajectory samples around ``t``. None when ``t`` is outside the trajectory or the two samples are
    more than ``max_gap`` seconds apart (a tracking gap). ``stamps`` must be increasing."""
    k = int(np.searchsorted(stamps, t, side="right"))
    if k == 0 or (k == len(stamps) and t > stamps[-1]):
        return None
    if stamps[k - 1] == t:
        return poses[k - 1].copy()
    t0, t1 = stamps[k - 1], stamps[k]
    if t1 - t0 > max_gap:
        return None
    w = (t - t0) / (t1 - t0)
    T = np.eye(4)
    rots = Rotation.from_matrix(np.stack([poses[k - 1][:3, :3], poses[k][:3, :3]]))
    T[:3, :3] = Slerp([0.0, 1.0], rots)([w]).as_matrix()[0]
    T[:3, 3] = (1 - w) * poses[k - 1][:3, 3] + w * poses[k][:3, 3]
    return T


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
