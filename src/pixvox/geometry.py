"""Camera and voxel conventions shared by data_prep, datasets and ops.

Conventions (used everywhere in pixvox):
- Pixels: ``u`` is the column (x, right), ``v`` the row (y, down); pixel centres sit at integer
  ``(u, v)``, matching the intrinsics of ScanNet, ICL-NUIM/Redwood, TUM and SUN RGB-D.
- Camera frame: OpenCV, x right, y down, z forward, metres.
- Poses are **camera-to-world** 4x4 matrices in metres: ``X_world = T @ [X_cam, 1]``.
- Depth is metric z (metres) along the optical axis, not ray length. On disk depth is uint16
  millimetres with 0 = no measurement.
- Voxel coordinates are ``floor(X_world / voxel_size)`` as int32; a voxel's centre is at
  ``(coord + 0.5) * voxel_size``.

These are plain PyTorch functions, fine for preprocessing; the fast, batched versions for training
live in :mod:`pixvox.ops`.
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


def voxel_coords(xyz: torch.Tensor, voxel_size: float) -> torch.Tensor:
    """World points ``[N, 3]`` (metres) → int32 voxel coordinates ``floor(xyz / voxel_size)``.

    Raises if any coordinate leaves the ±2^20 range that voxel keys support.
    """
    c = torch.floor(xyz.double() / voxel_size)
    if c.numel() and c.abs().max() >= MAX_VOXEL_COORD:
        raise ValueError(
            f"voxel coordinates reach {int(c.abs().max())}, beyond the supported ±{MAX_VOXEL_COORD} per axis; "
            f"the scene spans more than {MAX_VOXEL_COORD * voxel_size:.0f} m at voxel size {voxel_size} m "
            "(check depth units and poses)"
        )
    return c.to(torch.int32)


def voxelize(
    xyz: torch.Tensor, voxel_size: float, values: torch.Tensor | None = None
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
    """Group points into voxels.

    Args:
        xyz: ``[N, 3]`` world points in metres.
        voxel_size: voxel edge in metres.
        values: optional ``[N, C]`` per-point values (e.g. colors) to average per voxel.

    Returns:
        ``coords`` ``[V, 3]`` int32 unique voxel coordinates (sorted lexicographically),
        ``inverse`` ``[N]`` int64 voxel index of every point, and the ``[V, C]`` float64 mean of
        ``values`` per voxel (or None).
    """
    coords = voxel_coords(xyz, voxel_size)
    # One int64 key per voxel (21 bits per axis, offset to be non-negative): a 1-D unique is an order
    # of magnitude faster than unique(dim=0), and sorting the keys sorts (x, y, z) lexicographically.
    c = coords.long() + MAX_VOXEL_COORD
    keys, inverse = torch.unique((c[:, 0] << 42) | (c[:, 1] << 21) | c[:, 2], return_inverse=True)
    mask = (1 << 21) - 1
    uniq = torch.stack([keys >> 42, (keys >> 21) & mask, keys & mask], dim=1) - MAX_VOXEL_COORD
    mean = None
    if values is not None:
        v = values.double()
        acc = torch.zeros(uniq.shape[0], v.shape[1], dtype=torch.float64).index_add_(0, inverse, v)
        cnt = torch.bincount(inverse, minlength=uniq.shape[0]).clamp_min(1).unsqueeze(1)
        mean = acc / cnt
    return uniq.to(torch.int32), inverse, mean
