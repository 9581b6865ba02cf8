"""Synthetic back-projection workload: depth frames rendered inside a box room, and the room's voxels.

The room is an axis-aligned box of ``size`` metres whose six faces are voxelized at ``voxel_size``
(5% of the voxels dropped, so some pixels match nothing). Cameras stand inside it at random
positions and headings; their depth has 3% holes plus NaN and inf pixels. Surfaces pass through
voxel centres, so rendered points sit mid-voxel, far from any voxel face, and the float64 kernels
and the reference agree exactly.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

ROOM_SIZE_M = (7.0, 5.0, 2.8)


@dataclass(frozen=True)
class Workload:
    """Inputs of the back-projection benchmark, all on the CPU."""

    depth: torch.Tensor  #: [B, H, W] float32 z-depth, metres (holes: 0, NaN, inf)
    K: torch.Tensor  #: [B, 3, 3] float64 pinhole intrinsics, pixels
    poses: torch.Tensor  #: [B, 4, 4] float64 camera-to-world, metres
    frame_batch: torch.Tensor  #: [B] int64, all frames view scene sample 0
    coords: torch.Tensor  #: [N, 4] int32 (batch, x, y, z) voxels of the room, shuffled
    voxel_size: float  #: metres
    channels: int  #: feature channels of the scatter/gather part
    depth_max: float  #: metres


def look_rotation(yaw: float, pitch: float) -> torch.Tensor:
    """Camera-to-world rotation [3, 3] of an OpenCV camera looking along (yaw, pitch) in a z-up world."""
    forward = torch.tensor(
        [math.cos(yaw) * math.cos(pitch), math.sin(yaw) * math.cos(pitch), math.sin(pitch)],
        dtype=torch.float64,
    )
    right = torch.linalg.cross(forward, torch.tensor([0.0, 0.0, 1.0], dtype=torch.float64))
    right = right / right.norm()
    down = torch.linalg.cross(forward, right)
    return torch.stack([right, down, forward], dim=1)


def render_box_depth(
    K: torch.Tensor, pose: torch.Tensor, height: int, width: int, lo: list[float], hi: list[float]
) -> torch.Tensor:
    """z-depth [H, W] (metres, float64) of the inside of the box [lo, hi] seen from camera-to-world ``pose``."""
    v, u = torch.meshgrid(
        torch.arange(height, dtype=torch.float64), torch.arange(width, dtype=torch.float64), indexing="ij"
    )
    ray_cam = torch.stack([(u - K[0, 2]) / K[0, 0], (v - K[1, 2]) / K[1, 1], torch.ones_like(u)], dim=-1)
    ray = ray_cam @ pose[:3, :3].T
    origin = pose[:3, 3]
    t_hit = torch.full((height, width), math.inf, dtype=torch.float64)
    for axis in range(3):
        d = ray[..., axis]
        plane = torch.where(d > 0, torch.tensor(hi[axis]), torch.tensor(lo[axis]))
        t_axis = torch.where(d != 0, (plane - origin[axis]) / d, torch.tensor(math.inf, dtype=torch.float64))
        t_hit = torch.minimum(t_hit, t_axis)
    return t_hit  # the camera ray has unit z, so the ray parameter is the z-depth


def box_surface_voxels(cells: tuple[int, int, int]) -> torch.Tensor:
    """[N, 3] int64 voxels of the six faces of the box of cells [0, n] per axis."""
    faces = []
    for axis in range(3):
        others = [a for a in range(3) if a != axis]
        grid = torch.stack(
            torch.meshgrid(
                torch.arange(cells[others[0]] + 1), torch.arange(cells[others[1]] + 1), indexing="ij"
            ),
            dim=-1,
        ).reshape(-1, 2)
        for value in (0, cells[axis]):
            face = torch.empty(grid.shape[0], 3, dtype=torch.int64)
            face[:, axis] = value
            face[:, others] = grid
            faces.append(face)
    return torch.unique(torch.cat(faces), dim=0)


def make_workload(
    frames: int, height: int, width: int, channels: int, voxel_size: float, seed: int = 0
) -> Workload:
    """Render ``frames`` depth images of ``height`` x ``width`` pixels (focal 525 px at 640 wide)."""
    g = torch.Generator().manual_seed(seed)
    scale = width / 640
    K = torch.tensor(
        [[525.0 * scale, 0, 319.5 * scale], [0, 525.0 * scale, 239.5 * scale], [0, 0, 1]], dtype=torch.float64
    )
    size = ROOM_SIZE_M
    cells = (round(size[0] / voxel_size), round(size[1] / voxel_size), round(size[2] / voxel_size))
    lo = [0.5 * voxel_size] * 3
    hi = [(c + 0.5) * voxel_size for c in cells]

    poses, depths = [], []
    for _ in range(frames):
        r = torch.rand(6, generator=g, dtype=torch.float64)
        position = [1.0 + r[0] * (size[0] - 2), 1.0 + r[1] * (size[1] - 2), 1.2 + 0.6 * r[2]]
        pose = torch.eye(4, dtype=torch.float64)
        pose[:3, :3] = look_rotation(float(r[3]) * 2 * math.pi, (float(r[4]) - 0.5) * 0.7)
        pose[:3, 3] = torch.tensor(position, dtype=torch.float64)
        poses.append(pose)
        depths.append(render_box_depth(K, pose, height, width, lo, hi))
    depth = torch.stack(depths).float() if frames else torch.empty(0, height, width)
    holes = torch.rand(depth.shape, generator=g)
    depth[holes < 0.03] = 0.0
    depth[(holes >= 0.03) & (holes < 0.035)] = math.nan
    depth[(holes >= 0.035) & (holes < 0.036)] = math.inf

    surface = box_surface_voxels(cells)
    surface = surface[torch.rand(surface.shape[0], generator=g) >= 0.05]
    coords = torch.cat([torch.zeros(surface.shape[0], 1, dtype=torch.int64), surface], dim=1).int()
    coords = coords[torch.randperm(coords.shape[0], generator=g)]
    return Workload(
        depth=depth,
        K=K.expand(frames, 3, 3).clone(),
        poses=torch.stack(poses) if frames else torch.empty(0, 4, 4, dtype=torch.float64),
        frame_batch=torch.zeros(frames, dtype=torch.int64),
        coords=coords,
        voxel_size=voxel_size,
        channels=channels,
        depth_max=10.0,
    )
