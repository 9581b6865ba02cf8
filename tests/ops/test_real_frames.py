"""Real ICL-NUIM frames: pose/intrinsics conventions are consistent, and the kernels match the reference.

``../shared/data/icl_livingroom1``: trajectory.log holds camera-to-world poses (Open3D/Redwood log
format), depth PNGs are uint16 millimetres, intrinsics fx = fy = 525, cx = 319.5, cy = 239.5.
"""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from pixvox import ops
from pixvox.geometry import depth_mm_to_m
from pixvox.ops import reference as ref

from ._helpers import assert_voxel_index_equal, random_augmentation, unique_rows

ICL_K = torch.tensor([[525.0, 0.0, 319.5], [0.0, 525.0, 239.5], [0.0, 0.0, 1.0]], dtype=torch.float64)
VOXEL = 0.025
FRAME_A, FRAME_B = 0, 20


def read_trajectory_log(path: Path) -> torch.Tensor:
    """[N, 4, 4] float64 camera-to-world poses: per entry a header line then four matrix rows."""
    rows = [line.split() for line in path.read_text().splitlines() if line.strip()]
    if len(rows) % 5:
        raise ValueError(f"{path}: {len(rows)} non-empty lines, expected 5 per pose (header + 4 rows)")
    try:
        poses = [[[float(x) for x in r] for r in rows[i + 1 : i + 5]] for i in range(0, len(rows), 5)]
        return torch.tensor(poses, dtype=torch.float64)
    except ValueError as err:
        raise ValueError(f"{path}: not an Open3D trajectory log ({err})") from err


def read_depth(root: Path, frame: int) -> torch.Tensor:
    """[H, W] float32 metres from a uint16 millimetre PNG."""
    with Image.open(root / "depth" / f"{frame:05d}.png") as im:
        return depth_mm_to_m(np.asarray(im, dtype=np.uint16))


@functools.lru_cache(maxsize=2)
def load_pair(root: Path) -> tuple[torch.Tensor, torch.Tensor]:
    poses = read_trajectory_log(root / "trajectory.log")
    depth = torch.stack([read_depth(root, FRAME_A), read_depth(root, FRAME_B)])
    return depth, poses[[FRAME_A, FRAME_B]]


@pytest.fixture
def icl(shared_data: Path) -> tuple[torch.Tensor, torch.Tensor]:
    """Depth [2, 480, 640] metres and camera-to-world poses [2, 4, 4] of frames FRAME_A and FRAME_B."""
    root = shared_data / "icl_livingroom1"
    if not root.is_dir():
        pytest.skip(f"{root} is missing")
    depth, poses = load_pair(root)
    return depth.clone(), poses.clone()


def overlap_near_fraction(
    depth: torch.Tensor, K_a: torch.Tensor, K_b: torch.Tensor, pose_a: torch.Tensor, pose_b: torch.Tensor
) -> tuple[float, float]:
    """Share of frame B's points (every 2nd row and column) inside A's view and not hidden behind A's
    surface, and the share of those whose voxel has a voxel of frame A within one voxel."""
    seen_a = ops.backproject(depth[:1], K_a, pose_a[None]).points.double()
    coords_a = unique_rows(torch.floor(seen_a / VOXEL).long())[0].int()
    scene_a = ops.VoxelHash(torch.cat([torch.zeros(len(coords_a), 1, dtype=torch.int32), coords_a], dim=1))

    points_b = ops.backproject(depth[1:], K_b, pose_b[None], stride=2).points.double()
    world_to_a = torch.linalg.inv(pose_a)
    in_a = points_b @ world_to_a[:3, :3].T + world_to_a[:3, 3]
    z = in_a[:, 2]
    u = torch.round(in_a[:, 0] / z * K_a[0, 0] + K_a[0, 2]).long()
    v = torch.round(in_a[:, 1] / z * K_a[1, 1] + K_a[1, 2]).long()
    height, width = depth.shape[1:]
    inside = (z > 0.1) & (u >= 0) & (u < width) & (v >= 0) & (v < height)
    depth_a = torch.zeros_like(z)
    depth_a[inside] = depth[0, v[inside], u[inside]].double()
    # Not occluded from A: in front of (or on) the surface A measured along that ray. A point in front
    # of it contradicts A's free space, so a wrong pose or wrong intrinsics shows up here.
    overlap = inside & (depth_a > 0) & (z <= depth_a + 0.05)
    voxels_b = torch.floor(points_b[overlap] / VOXEL).int()
    batch = torch.zeros(len(voxels_b), 1, dtype=torch.int32)
    near = torch.zeros(len(voxels_b), dtype=torch.bool)
    for offset in torch.cartesian_prod(*[torch.arange(-1, 2, dtype=torch.int32)] * 3):
        near |= scene_a.lookup(torch.cat([batch, voxels_b + offset], dim=1)) >= 0
    return float(overlap.double().mean()), float(near.double().mean())


def test_two_frames_see_the_same_voxels(icl):
    depth, poses = icl
    for a, b in ((0, 1), (1, 0)):
        pair = depth[[a, b]]
        overlap, near = overlap_near_fraction(pair, ICL_K, ICL_K, poses[a], poses[b])
        assert overlap > 0.5, overlap  # the frames really overlap
        assert near > 0.99, near


@pytest.mark.parametrize("mistake", ["world_to_camera", "transposed_rotation", "swapped_principal_point"])
def test_wrong_conventions_are_detected(icl, mistake):
    """The check fails when frame B's pose or intrinsics follow a wrong convention (B's points are
    compared with frame A's correct voxels), so passing it means something. Frame A's pose is the
    identity, which every pose convention leaves unchanged."""
    depth, poses = icl
    pose_b, K = poses[1].clone(), ICL_K.clone()
    if mistake == "world_to_camera":
        pose_b = torch.linalg.inv(pose_b)
    elif mistake == "transposed_rotation":
        pose_b[:3, :3] = pose_b[:3, :3].T
    else:
        K[0, 2], K[1, 2] = K[1, 2], K[0, 2]
    overlap, near = overlap_near_fraction(depth, ICL_K, K, poses[0], pose_b)
    assert near < 0.5, (mistake, overlap, near)


def test_real_frames_match_reference(icl, gen):
    depth, poses = icl
    extra = random_augmentation(gen)[None]
    frame_batch = torch.zeros(2, dtype=torch.int64)
    kwargs = {"frame_batch": frame_batch, "depth_min": 0.3, "depth_max": 8.0, "stride": 2}
    points = ref.reference_points_float64(depth, ICL_K, poses, extra_transform=extra, **kwargs)
    _, bvu = ref.backproject_reference(depth, ICL_K, poses, 0.3, 8.0, 2)
    # Scene: the augmented voxels of frame A only, so frame B's new surfaces match nothing.
    from_a = bvu[:, 0] == 0
    coords = unique_rows(torch.floor(points[from_a] / VOXEL).long())[0]
    coords = torch.cat([torch.zeros(len(coords), 1, dtype=torch.int64), coords], dim=1)
    got = ops.pixel_to_voxel(depth, ICL_K, poses, VOXEL, ops.VoxelHash(coords), extra, **kwargs)
    want_bvu, want_index, want_points = ref.pixel_to_voxel_reference(
        depth, ICL_K, poses, VOXEL, ref.ReferenceVoxelHash(coords), extra, **kwargs
    )
    assert torch.equal(got.pixel_bvu, want_bvu)
    assert_voxel_index_equal(got.voxel_index, want_index, points, VOXEL)
    torch.testing.assert_close(got.points, want_points)
    assert bool((got.voxel_index[from_a] >= 0).all())
    assert 0.5 < float((got.voxel_index[~from_a] >= 0).double().mean()) < 1.0
