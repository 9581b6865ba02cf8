"""Pure-PyTorch reference implementations of :mod:`pixvox.ops`, for tests and benchmarks only.

Written independently of the kernels: frames are processed one at a time with vectorized tensor
ops, the augmentation is applied to the points after the pose (not composed with it), the voxel
lookup is a lexicographic sort plus ``torch.searchsorted`` per scene sample, and the reductions use
``index_add_`` / ``scatter_reduce``. Semantics match the public API (same pixel order, -1 for
unmatched pixels, zeros for empty voxels), arithmetic is float64 for the geometry.
"""

from __future__ import annotations

import math

import torch

from pixvox.geometry import MAX_VOXEL_COORD

_AXIS = 2 * MAX_VOXEL_COORD  # one key digit per axis: coordinate + 2^20 lies in [1, 2^21)


def _pack_keys(xyz: torch.Tensor) -> torch.Tensor:
    """``[M, 3]`` int64 in-range voxel coordinates → int64 keys, mixed-radix with radix 2^21."""
    shifted = xyz + MAX_VOXEL_COORD
    return (shifted[:, 0] * _AXIS + shifted[:, 1]) * _AXIS + shifted[:, 2]


class ReferenceVoxelHash:
    """Voxel lookup by sorting ``(batch, key)`` and binary search within each batch's segment.

    Args:
        coords: ``[N, 4]`` integer ``(batch, x, y, z)``; rows must be unique and in the key range.
    """

    def __init__(self, coords: torch.Tensor) -> None:
        coords = coords.long()
        if coords.shape[0] and bool((coords[:, 1:].abs() >= MAX_VOXEL_COORD).any()):
            raise ValueError(f"coordinates must satisfy |c| < {MAX_VOXEL_COORD}")
        if torch.unique(coords, dim=0).shape[0] != coords.shape[0]:
            raise ValueError("duplicate voxel coordinates")
        keys = _pack_keys(coords[:, 1:])
        by_key = torch.argsort(keys, stable=True)
        order = by_key[torch.argsort(coords[by_key, 0], stable=True)]
        self.order = order
        self.sorted_keys = keys[order]
        sorted_batch = coords[order, 0]
        self.num_batches = int(sorted_batch.max()) + 1 if coords.shape[0] else 0
        self.segment_starts = torch.searchsorted(
            sorted_batch, torch.arange(self.num_batches + 1, device=coords.device, dtype=torch.int64)
        )

    def lookup(self, batch: torch.Tensor, xyz: torch.Tensor) -> torch.Tensor:
        """Row of each ``(batch [M], xyz [M, 3] int64)`` query in the coordinates, or -1."""
        batch, xyz = batch.long(), xyz.long()
        out = torch.full((xyz.shape[0],), -1, dtype=torch.int64, device=xyz.device)
        storable = (xyz.abs() < MAX_VOXEL_COORD).all(dim=1) & (batch >= 0) & (batch < self.num_batches)
        keys = _pack_keys(torch.where(storable[:, None], xyz, torch.zeros_like(xyz)))
        for b in torch.unique(batch[storable]).tolist():
            rows = (storable & (batch == b)).nonzero().squeeze(1)
            lo, hi = int(self.segment_starts[b]), int(self.segment_starts[b + 1])
            if hi == lo:
                continue
            segment = self.sorted_keys[lo:hi]
            pos = torch.searchsorted(segment, keys[rows])
            hit = (pos < hi - lo) & (segment[pos.clamp(max=hi - lo - 1)] == keys[rows])
            out[rows[hit]] = self.order[lo + pos[hit]]
        return out


def _backproject_float64(
    depth: torch.Tensor,
    K: torch.Tensor,
    cam_to_world: torch.Tensor,
    depth_min: float,
    depth_max: float,
    stride: int,
    extra_transform: torch.Tensor | None,
    frame_batch: torch.Tensor | None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Kept pixels: float64 world points ``[P, 3]``, ``(b, v, u)`` ``[P, 3]``, scene sample ``[P]``."""
    frames = depth.shape[0]
    device = depth.device
    K = K.to(device, torch.float64).expand(frames, 3, 3)
    poses = cam_to_world.to(device, torch.float64).reshape(frames, 4, 4)
    samples = torch.arange(frames) if frame_batch is None else torch.as_tensor(frame_batch).long()
    extra = None if extra_transform is None else extra_transform.to(device, torch.float64).reshape(-1, 4, 4)
    points, pixels, batches = [], [], []
    for b in range(frames):
        d = depth[b, ::stride, ::stride].to(torch.float64)
        keep = torch.isfinite(d) & (d > 0) & (d >= depth_min) & (d <= depth_max)
        vu = keep.nonzero()
        z = d[vu[:, 0], vu[:, 1]]
        v = (vu[:, 0] * stride).to(torch.float64)
        u = (vu[:, 1] * stride).to(torch.float64)
        fx, fy, cx, cy = (float(K[b, i, j]) for i, j in ((0, 0), (1, 1), (0, 2), (1, 2)))
        x_cam = (u - cx) * z / fx
        y_cam = (v - cy) * z / fy
        T = poses[b].tolist()
        world = [T[i][0] * x_cam + T[i][1] * y_cam + T[i][2] * z + T[i][3] for i in range(3)]
        sample = int(samples[b])
        if extra is not None:
            E = extra[sample].tolist()
            world = [E[i][0] * world[0] + E[i][1] * world[1] + E[i][2] * world[2] + E[i][3] for i in range(3)]
        points.append(torch.stack(world, dim=1))
        frame = torch.full((vu.shape[0], 1), b, dtype=torch.int64, device=device)
        pixels.append(torch.cat([frame, vu * stride], dim=1))
        batches.append(torch.full((vu.shape[0],), sample, dtype=torch.int64, device=device))
    if not points:
        empty = torch.empty(0, 3, device=device)
        return empty.double(), empty.long(), torch.empty(0, dtype=torch.int64, device=device)
    return torch.cat(points), torch.cat(pixels), torch.cat(batches)


def backproject_reference(
    depth: torch.Tensor,
    K: torch.Tensor,
    cam_to_world: torch.Tensor,
    depth_min: float = 0.0,
    depth_max: float = math.inf,
    stride: int = 1,
    *,
    extra_transform: torch.Tensor | None = None,
    frame_batch: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Reference of :func:`pixvox.ops.backproject`: ``(points [P, 3] depth dtype, pixel_bvu [P, 3])``."""
    points, pixels, _ = _backproject_float64(
        depth, K, cam_to_world, depth_min, depth_max, stride, extra_transform, frame_batch
    )
    return points.to(depth.dtype), pixels


def pixel_to_voxel_reference(
    depth: torch.Tensor,
    K: torch.Tensor,
    cam_to_world: torch.Tensor,
    voxel_size: float,
    scene: ReferenceVoxelHash,
    extra_transform: torch.Tensor | None = None,
    *,
    frame_batch: torch.Tensor | None = None,
    depth_min: float = 0.0,
    depth_max: float = math.inf,
    stride: int = 1,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Reference of :func:`pixvox.ops.pixel_to_voxel`: ``(pixel_bvu, voxel_index, points)``.

    ``scene`` is a :class:`ReferenceVoxelHash` of the scene's ``(batch, x, y, z)`` coordinates.
    """
    points, pixels, batches = _backproject_float64(
        depth, K, cam_to_world, depth_min, depth_max, stride, extra_transform, frame_batch
    )
    scaled = torch.floor(points / voxel_size)
    inside = (scaled.abs() < MAX_VOXEL_COORD).all(dim=1)
    xyz = torch.where(inside[:, None], scaled, torch.full_like(scaled, MAX_VOXEL_COORD)).long()
    return pixels, scene.lookup(batches, xyz), points.to(depth.dtype)


def reference_points_float64(
    depth: torch.Tensor,
    K: torch.Tensor,
    cam_to_world: torch.Tensor,
    depth_min: float = 0.0,
    depth_max: float = math.inf,
    stride: int = 1,
    *,
    extra_transform: torch.Tensor | None = None,
    frame_batch: torch.Tensor | None = None,
) -> torch.Tensor:
    """The reference's float64 world points ``[P, 3]`` (before casting to the depth dtype)."""
    return _backproject_float64(
        depth, K, cam_to_world, depth_min, depth_max, stride, extra_transform, frame_batch
    )[0]


def scatter_to_voxels_reference(
    pixel_feats: torch.Tensor, voxel_index: torch.Tensor, num_voxels: int, reduce: str = "mean"
) -> tuple[torch.Tensor, torch.Tensor]:
    """Reference of :func:`pixvox.ops.scatter_to_voxels`: ``(features [V, C], counts [V])``, differentiable.

    Pixels with index -1 go to an extra dump row ``V`` that is dropped, which avoids a masked copy
    of the features.
    """
    index = voxel_index.long()
    routed = torch.where(index >= 0, index, num_voxels)
    counts = torch.bincount(routed, minlength=num_voxels + 1)[:num_voxels]
    rows = pixel_feats.new_zeros(num_voxels + 1, pixel_feats.shape[1])
    if reduce in ("sum", "mean"):
        summed = rows.index_add(0, routed, pixel_feats)[:num_voxels]
        if reduce == "sum":
            return summed, counts
        return summed / counts.clamp_min(1).to(pixel_feats.dtype).unsqueeze(1), counts
    if reduce == "max":
        expanded = routed.unsqueeze(1).expand_as(pixel_feats)
        return rows.scatter_reduce(0, expanded, pixel_feats, "amax", include_self=False)[:num_voxels], counts
    raise ValueError(f"unknown reduction {reduce!r}")


def gather_from_voxels_reference(voxel_feats: torch.Tensor, voxel_index: torch.Tensor) -> torch.Tensor:
    """Reference of :func:`pixvox.ops.gather_from_voxels`: ``[P, C]``, zero rows where the index is -1."""
    index = voxel_index.long()
    padded = torch.cat([voxel_feats, voxel_feats.new_zeros(1, voxel_feats.shape[1])])
    return padded[torch.where(index >= 0, index, voxel_feats.shape[0])]
