"""A tiny synthetic scene for the self-test: a textured box room seen by a few pinhole cameras.

Self-contained (no data download, no preparation step): depth is exact ray casting against the six
walls, colour a per-cell palette of a 0.3 m grid on the walls, so that the 2D teacher and the 3D
student both see structure. Conventions of :mod:`pixvox.geometry`: OpenCV camera frame,
camera-to-world poses in metres, z-depth in metres (uint16 millimetres on disk).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from pixvox.geometry import backproject_depth, voxelize
from pixvox.io.fusions import FusionIndex, FusionRecord, FusionSample, write_fusion_sample

ROOM = (4.0, 3.0, 2.5)  #: metres along x, y, z (z up); the room spans [0, ROOM]
CELL = 0.3  #: metres, edge of a texture cell


@dataclass
class RenderedFrames:
    """``depth`` ``[F, H, W]`` float64 metres (0 = hole), ``images`` ``[F, H, W, 3]`` uint8,
    ``K`` ``[3, 3]`` float64 pixels, ``cam_to_world`` ``[F, 4, 4]`` float64 metres."""

    depth: torch.Tensor
    images: torch.Tensor
    K: torch.Tensor
    cam_to_world: torch.Tensor


def _look_pose(eye: torch.Tensor, yaw: float, pitch: float) -> torch.Tensor:
    """Camera-to-world pose at ``eye`` looking along (yaw, pitch), OpenCV axes (x right, y down)."""
    f = torch.tensor(
        [math.cos(yaw) * math.cos(pitch), math.sin(yaw) * math.cos(pitch), math.sin(pitch)],
        dtype=torch.float64,
    )
    up = torch.tensor([0.0, 0.0, 1.0], dtype=torch.float64)
    right = torch.linalg.cross(f, up)
    right = right / right.norm()
    down = torch.linalg.cross(f, right)
    T = torch.eye(4, dtype=torch.float64)
    T[:3, 0], T[:3, 1], T[:3, 2], T[:3, 3] = right, down, f, eye
    return T


def _palette(seed: int) -> torch.Tensor:
    return torch.randint(30, 226, (64, 3), generator=torch.Generator().manual_seed(seed), dtype=torch.int64)


def render_room(
    frames: int, height: int, width: int, seed: int, hole_fraction: float = 0.02
) -> RenderedFrames:
    """Render ``frames`` views of the room from random poses inside it (deterministic in ``seed``)."""
    gen = torch.Generator().manual_seed(seed)
    room = torch.tensor(ROOM, dtype=torch.float64)
    focal = 0.9 * width
    K = torch.tensor(
        [[focal, 0, (width - 1) / 2], [0, focal, (height - 1) / 2], [0, 0, 1]], dtype=torch.float64
    )
    v, u = torch.meshgrid(
        torch.arange(height, dtype=torch.float64), torch.arange(width, dtype=torch.float64), indexing="ij"
    )
    rays_cam = torch.stack([(u - K[0, 2]) / focal, (v - K[1, 2]) / focal, torch.ones_like(u)], dim=-1)
    palette = _palette(seed)
    depths, images, poses = [], [], []
    for _ in range(frames):
        eye = 0.8 + torch.rand(3, generator=gen, dtype=torch.float64) * (room - 1.6)
        yaw = float(torch.rand((), generator=gen)) * 2 * math.pi
        pitch = (float(torch.rand((), generator=gen)) - 0.5) * 0.6
        T = _look_pose(eye, yaw, pitch)
        d = rays_cam.reshape(-1, 3) @ T[:3, :3].T  # world directions with unit z-depth
        # Distance (in z-depth units) to the wall each ray leaves the box through.
        far = torch.where(d > 0, room, torch.zeros_like(room))
        t_axis = torch.where(d.abs() > 1e-12, (far - eye) / d, torch.full_like(d, math.inf))
        t, axis = t_axis.min(dim=1)
        p = eye + t[:, None] * d
        cell = torch.floor(p / CELL).long()
        wall = axis * 2 + (d.gather(1, axis[:, None])[:, 0] > 0).long()  # which of the six walls
        key = (cell[:, 0] * 7 + cell[:, 1] * 13 + cell[:, 2] * 29 + wall * 5) % palette.shape[0]
        rgb = palette[key].reshape(height, width, 3)
        depth = t.reshape(height, width).clone()
        holes = torch.rand(height, width, generator=gen) < hole_fraction
        depth[holes] = 0.0
        depths.append(depth)
        images.append(rgb.to(torch.uint8))
        poses.append(T)
    return RenderedFrames(torch.stack(depths), torch.stack(images), K, torch.stack(poses))


def scene_voxels(frames: RenderedFrames, voxel_size: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Voxels seen by the frames: ``coords`` ``[V, 3]`` int32 and mean colours ``[V, 3]`` uint8."""
    points, colors = [], []
    for b in range(frames.depth.shape[0]):
        xyz, vu = backproject_depth(frames.depth[b], frames.K, frames.cam_to_world[b])
        points.append(xyz)
        colors.append(frames.images[b][vu[:, 0], vu[:, 1]].double())
    coords, _, mean = voxelize(torch.cat(points), voxel_size, torch.cat(colors))
    assert mean is not None
    # The package voxelizer works in NumPy; the self-test keeps torch tensors throughout.
    colors_u8 = torch.from_numpy(mean).round().clamp(0, 255).to(torch.uint8)
    return torch.from_numpy(coords).to(torch.int32), colors_u8


def write_fusions(
    root: str | Path,
    samples: int = 4,
    frames_per_sample: int = 2,
    image_size: tuple[int, int] = (60, 80),
    voxel_size: float = 0.1,
    seed: int = 0,
) -> FusionIndex:
    """Write a small fusion dataset (``index.json`` + ``samples/*.npz``) of the room, one view set per sample."""
    root = Path(root)
    index = FusionIndex(root=root, voxel_size=voxel_size, frames_per_sample=frames_per_sample)
    h, w = image_size
    for i in range(samples):
        fr = render_room(frames_per_sample, h, w, seed=seed * 1000 + i)
        # Depth travels in whole millimetres, as on disk; voxelize what the dataset will read back.
        depth_mm = (fr.depth * 1000).round().clamp(0, 65535)
        fr.depth = depth_mm / 1000
        coords, colors = scene_voxels(fr, voxel_size)
        sample = FusionSample(
            coords=coords.numpy(),
            colors=colors.numpy(),
            images=fr.images.numpy(),
            depths=depth_mm.numpy().astype(np.uint16),
            intrinsics=np.repeat(fr.K.numpy().astype(np.float32)[None], frames_per_sample, axis=0),
            cam_to_world=fr.cam_to_world.numpy(),
            voxel_size=voxel_size,
        )
        name = f"room_{i:03d}"
        file = f"samples/{name}.npz"
        sha = write_fusion_sample(root / file, sample)
        index.samples.append(FusionRecord(name, file, sample.num_voxels, sample.num_frames, sha, "selftest"))
    index.write()
    return index
