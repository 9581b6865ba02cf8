"""Camera and voxel conventions shared by pixvox.prep, datasets and ops.

Conventions (used everywhere in pixvox):
- Pixels: ``u`` is the column (x, right), ``v`` the row (y, down); pixel centres sit at integer
  ``(u, v)``, matching the intrinsics of ScanNet, ICL-NUIM/Redwood, TUM and SUN RGB-D.
- Camera frame: OpenCV, x right, y down, z forward, metres.
- Poses are **camera-to-world** 4x4 matrices in metres: ``X_world = T @ [X_cam, 1]``.
- Depth is metric z (metres) along the optical axis, not ray length. On disk depth is uint16
  millimetres with 0 = no measurement.
- Voxel coordinates are ``floor(X_world / voxel_size)`` as int32; a voxel's centre is at
  ``(coord + 0.5) * voxel_size``.

:func:`voxelize` is the one voxelizer of preparation, augmentation and segmentation (NumPy, float64);
the batched GPU voxel hash for training lives in :mod:`pixvox.ops`.
"""

from __future__ import annotations

import numpy as np
import torch

#: Largest |voxel coordinate| per axis that voxel keys can hold (21 bits signed per axis).
MAX_VOXEL_COORD = 2**20


def depth_mm_to_m(depth_mm: np.ndarray | torch.Tensor) -> torch.Tensor:
    """uint16 millimetres ``[H, W]`` → float32 metres, 0 where there is no measurement."""
    d = torch.as_tensor(
        np.asarray(depth_mm, dtype=np.float32) if isinstance(depth_mm, np.ndarray) else depth_mm
    )
    return d.float() / 1000.0


def backproject_depth(
    depth: torch.Tensor,
    K: torch.Tensor,
    cam_to_world: torch.Tensor,
    depth_min: float = 0.0,
    depth_max: float = float("inf"),
) -> tuple[torch.Tensor, torch.Tensor]:
    """Lift one depth image to world points.

    Args:
        depth: ``[H, W]`` float depth in metres (0, negative, NaN or inf = invalid).
        K: ``[3, 3]`` pinhole intrinsics in pixels.
        cam_to_world: ``[4, 4]`` camera-to-world pose in metres.
        depth_min, depth_max: keep pixels with ``depth_min < d <= depth_max`` (metres).

    Returns:
        ``xyz`` ``[P, 3]`` world points (dtype of ``depth``) and ``vu`` ``[P, 2]`` int64 (row, column)
        of the pixel each point came from, in row-major pixel order.
    """
    if depth.ndim != 2:
        raise ValueError(f"depth must be [H, W], got {tuple(depth.shape)}")
    dtype = depth.dtype if depth.is_floating_point() else torch.float32
    d = depth.to(dtype)
    valid = torch.isfinite(d) & (d > 0) & (d > depth_min) & (d <= depth_max)
    vu = valid.nonzero()
    z = d[vu[:, 0], vu[:, 1]]
    K = K.to(dtype)
    x = (vu[:, 1].to(dtype) - K[0, 2]) * z / K[0, 0]
    y = (vu[:, 0].to(dtype) - K[1, 2]) * z / K[1, 1]
    cam = torch.stack([x, y, z], dim=1)
    T = cam_to_world.to(dtype)
    return cam @ T[:3, :3].T + T[:3, 3], vu


def voxel_coords(xyz: np.ndarray | torch.Tensor, voxel_size: float) -> np.ndarray:
    """World points ``[N, 3]`` (metres) → int32 voxel coordinates ``floor(xyz / voxel_size)``.

    Computed in float64 whatever the input dtype (a torch tensor is read on the CPU). Raises
    ``ValueError`` if any coordinate leaves the ±2^20 range that voxel keys support.
    """
    if isinstance(xyz, torch.Tensor):
        xyz = xyz.detach().cpu().numpy()
    c = np.floor(np.asarray(xyz, dtype=np.float64) / voxel_size)
    if c.size and np.abs(c).max() >= MAX_VOXEL_COORD:
        raise ValueError(
            f"voxel coordinates reach {int(np.abs(c).max())}, beyond the supported ±{MAX_VOXEL_COORD} per axis; "
            f"the scene spans more than {MAX_VOXEL_COORD * voxel_size:.0f} m at voxel size {voxel_size} m "
            "(check the units (metres), depth scale and poses)"
        )
    return c.astype(np.int32).reshape(-1, 3)


def voxelize(
    xyz: np.ndarray | torch.Tensor, voxel_size: float, values: np.ndarray | torch.Tensor | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """Group points into voxels: the one voxelizer of pixvox (fusion, augmentation, segmentation).

    Args:
        xyz: ``[N, 3]`` points in metres (any float dtype; floored in float64).
        voxel_size: voxel edge in metres.
        values: optional ``[N, C]`` per-point values (e.g. colors) to average per voxel.

    Returns:
        ``coords`` ``[V, 3]`` int32 unique voxel coordinates, sorted lexicographically (x, then y, z);
        ``inverse`` ``[N]`` int64 row of every point's voxel (``coords[inverse] == floor(xyz / vs)``);
        the ``[V, C]`` float64 mean of ``values`` per voxel, summed in point order (or None).
    """
    c = voxel_coords(xyz, voxel_size).astype(np.int64) + MAX_VOXEL_COORD  # in [0, 2^21)
    # One int64 key per voxel (21 bits per axis, x most significant): a 1-D unique is an order of
    # magnitude faster than unique(axis=0), and sorting the keys sorts (x, y, z) lexicographically.
    keys, inverse = np.unique((c[:, 0] << 42) | (c[:, 1] << 21) | c[:, 2], return_inverse=True)
    inverse = inverse.reshape(-1).astype(np.int64)
    mask = np.int64((1 << 21) - 1)
    coords = np.stack([keys >> 42, (keys >> 21) & mask, keys & mask], 1) - MAX_VOXEL_COORD
    mean = None
    if values is not None:
        if isinstance(values, torch.Tensor):
            values = values.detach().cpu().numpy()
        vals = np.asarray(values, dtype=np.float64)
        vals = vals.reshape(vals.shape[0], int(np.prod(vals.shape[1:])))  # [N] or [N, ...] → [N, C]
        v = keys.shape[0]
        counts = np.bincount(inverse, minlength=v).astype(np.float64)
        sums = [np.bincount(inverse, vals[:, k], minlength=v) for k in range(vals.shape[1])]
        mean = np.stack(sums, 1).reshape(v, vals.shape[1]) / np.maximum(counts, 1)[:, None]
    return coords.astype(np.int32).reshape(-1, 3), inverse, mean
