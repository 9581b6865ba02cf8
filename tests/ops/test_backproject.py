"""backproject and pixel_to_voxel against the float64 reference, a hand-computed case and bad input."""

from __future__ import annotations

import math

import pytest
import torch

from pixvox import ops
from pixvox.ops import reference as ref

from ._helpers import (
    assert_voxel_index_equal,
    random_augmentation,
    random_depth,
    random_intrinsics,
    random_pose,
    scene_from_points,
    unique_rows,
)


def random_frames(gen: torch.Generator, frames: int = 5, height: int = 23, width: int = 31):
    depth = random_depth(gen, frames, height, width)
    K = random_intrinsics(gen, frames, height, width)
    poses = torch.stack([random_pose(gen) for _ in range(frames)])
    return depth, K, poses


@pytest.mark.parametrize("stride", [1, 3])
def test_backproject_matches_reference(gen, device, stride):
    depth, K, poses = random_frames(gen)
    depth[2] = math.nan  # an all-invalid frame in the middle
    got = ops.backproject(depth.to(device), K, poses, 0.3, 10.0, stride)
    want_points, want_bvu = ref.backproject_reference(depth, K, poses, 0.3, 10.0, stride)
    assert torch.equal(got.pixel_bvu.cpu(), want_bvu)
    assert got.points.dtype == torch.float64
    torch.testing.assert_close(got.points.cpu(), want_points, rtol=1e-13, atol=1e-13)
    assert not bool((got.pixel_bvu[:, 0] == 2).any())
    assert bool((got.pixel_bvu[:, 1:] % stride == 0).all())


def test_backproject_float32_depth(gen, device):
    depth, K, poses = random_frames(gen)
    depth = depth.float()
    got = ops.backproject(depth.to(device), K, poses, 0.0, 10.0)
    want_points, want_bvu = ref.backproject_reference(depth, K, poses, 0.0, 10.0)
    assert got.points.dtype == torch.float32
    assert torch.equal(got.pixel_bvu.cpu(), want_bvu)
    torch.testing.assert_close(got.points.cpu(), want_points)  # float32 rounding of the same float64 point


def test_backproject_hand_computed(device):
    # 2 x 3 depth; K: fx = 2, fy = 4, cx = 1, cy = 0.5. Pose: rotate 90 degrees about z, move by (1, 2, 3).
    depth = torch.tensor([[[2.0, 0.0, 4.0], [math.nan, 1.0, 8.0]]], dtype=torch.float64)
    K = torch.tensor([[2.0, 0.0, 1.0], [0.0, 4.0, 0.5], [0.0, 0.0, 1.0]], dtype=torch.float64)
    pose = torch.tensor(
        [[0.0, -1.0, 0.0, 1.0], [1.0, 0.0, 0.0, 2.0], [0.0, 0.0, 1.0, 3.0], [0.0, 0.0, 0.0, 1.0]],
        dtype=torch.float64,
    )
    got = ops.backproject(depth.to(device), K, pose[None], depth_min=1.0, depth_max=4.0)
    # camera points (x, y, z) = ((u - 1) z / 2, (v - 0.5) z / 4, z); world = (1 - y, 2 + x, 3 + z).
    # (v0,u0) d=2: cam (-1, -0.25, 2)  -> (1.25, 1, 5)
    # (v0,u2) d=4: cam ( 2, -0.5, 4)   -> (1.5, 4, 7)
    # (v1,u1) d=1: cam ( 0, 0.125, 1)  -> (0.875, 2, 4)   (d == depth_min is kept)
    # (v1,u2) d=8 is beyond depth_max, (v0,u1) has no depth, (v1,u0) is NaN.
    assert got.pixel_bvu.tolist() == [[0, 0, 0], [0, 0, 2], [0, 1, 1]]
    assert got.points.tolist() == [[1.25, 1.0, 5.0], [1.5, 4.0, 7.0], [0.875, 2.0, 4.0]]


@pytest.mark.parametrize("voxel_size", [0.03, 0.6])  # 0.6 m: hundreds of pixels per voxel
def test_pixel_to_voxel_matches_reference(gen, device, voxel_size):
    depth, K, poses = random_frames(gen, frames=6)
    depth[4] = 0.0  # an empty frame
    frame_batch = torch.tensor([0, 0, 0, 2, 1, 2])  # unequal numbers of frames per scene sample
    extra = torch.stack([random_augmentation(gen) for _ in range(4)])  # sample 3 has no frames
    points = ref.reference_points_float64(
        depth, K, poses, 0.0, 10.0, extra_transform=extra, frame_batch=frame_batch
    )
    _, bvu = ref.backproject_reference(depth, K, poses, 0.0, 10.0)
    coords = scene_from_points(gen, points, frame_batch[bvu[:, 0]], voxel_size)
    coords = torch.cat([coords, torch.tensor([[3, 0, 0, 0]], dtype=torch.int32)])

    got = ops.pixel_to_voxel(
        depth.to(device),
        K,
        poses,
        voxel_size,
        ops.VoxelHash(coords.to(device)),
        extra,
        frame_batch=frame_batch,
        depth_max=10.0,
    )
    want_bvu, want_index, want_points = ref.pixel_to_voxel_reference(
        depth,
        K,
        poses,
        voxel_size,
        ref.ReferenceVoxelHash(coords),
        extra,
        frame_batch=frame_batch,
        depth_max=10.0,
    )
    assert torch.equal(got.pixel_bvu.cpu(), want_bvu)
    assert_voxel_index_equal(got.voxel_index, want_index, points, voxel_size)
    torch.testing.assert_close(got.points.cpu(), want_points, rtol=1e-12, atol=1e-12)
    hit = float((want_index >= 0).double().mean())
    assert 0.3 < hit < 0.95, hit  # both matched and unmatched pixels are exercised


def test_augmentation_keeps_pixels_on_their_voxels(gen, device):
    """Voxelize the augmented points as a dataset would; passing the augmentation re-finds every voxel."""
    depth, K, poses = random_frames(gen, frames=3)
    frame_batch = torch.tensor([0, 1, 1])
    extra = torch.stack([random_augmentation(gen) for _ in range(2)])
    world, bvu = ref.backproject_reference(depth, K, poses, 0.0, 10.0)
    augmented = ref.reference_points_float64(
        depth, K, poses, 0.0, 10.0, extra_transform=extra, frame_batch=frame_batch
    )
    voxel_size = 0.05
    sample = frame_batch[bvu[:, 0]]
    own = torch.cat([sample[:, None], torch.floor(augmented / voxel_size).long()], dim=1)
    coords, own_row = unique_rows(own)
    scene = ops.VoxelHash(coords.to(device))

    got = ops.pixel_to_voxel(
        depth.to(device), K, poses, voxel_size, scene, extra, frame_batch=frame_batch, depth_max=10
    )
    assert_voxel_index_equal(got.voxel_index, own_row, augmented, voxel_size)
    # Control: forgetting the augmentation loses nearly all matches, so the check above can fail.
    plain = ops.pixel_to_voxel(
        depth.to(device), K, poses, voxel_size, scene, frame_batch=frame_batch, depth_max=10
    )
    assert float((plain.voxel_index >= 0).double().mean()) < 0.2
    assert world.shape == augmented.shape


def test_out_of_key_range_points_match_nothing(device):
    depth = torch.full((1, 4, 5), 2.0, dtype=torch.float64)
    K = torch.tensor([[5.0, 0, 2], [0, 5.0, 1.5], [0, 0, 1]], dtype=torch.float64)
    far = torch.eye(4, dtype=torch.float64)
    far[0, 3] = 1e6  # 4e7 voxels away: beyond +-2^20, must neither raise nor wrap around
    scene = ops.VoxelHash(torch.tensor([[0, 0, 0, 0]], dtype=torch.int32, device=device))
    got = ops.pixel_to_voxel(depth.to(device), K, far[None], 0.025, scene)
    assert got.voxel_index.shape == (20,) and bool((got.voxel_index == -1).all())


def test_empty_batches(device):
    K = torch.eye(3, dtype=torch.float64)
    scene = ops.VoxelHash(torch.tensor([[0, 0, 0, 0]], dtype=torch.int32, device=device))
    for shape in [(0, 4, 5), (2, 0, 5), (2, 4, 0)]:
        depth = torch.ones(shape, device=device)
        poses = torch.eye(4, dtype=torch.float64).expand(shape[0], 4, 4)
        got = ops.pixel_to_voxel(depth, K, poses, 0.1, scene)
        assert got.pixel_bvu.shape == (0, 3) and got.voxel_index.shape == (0,) and got.points.shape == (0, 3)
    invalid = torch.tensor([[[0.0, math.nan], [math.inf, -2.0]]], device=device)
    got = ops.backproject(invalid, K, torch.eye(4)[None])
    assert got.points.shape == (0, 3) and got.points.dtype == torch.float32


def test_repeatable_and_thread_count_independent(gen):
    depth, K, poses = random_frames(gen, frames=4, height=60, width=80)
    _, bvu = ref.backproject_reference(depth, K, poses, 0.0, 10.0)
    points = ref.reference_points_float64(depth, K, poses, 0.0, 10.0)
    scene = ops.VoxelHash(scene_from_points(gen, points, bvu[:, 0], 0.05))
    threads = torch.get_num_threads()
    try:
        runs = []
        for n in (threads, 1, threads):
            torch.set_num_threads(n)
            runs.append(ops.pixel_to_voxel(depth, K, poses, 0.05, scene, depth_max=10.0))
    finally:
        torch.set_num_threads(threads)
    for other in runs[1:]:
        for a, b in zip(runs[0], other):
            assert torch.equal(a, b)
    # Without frame_batch, frame b belongs to scene sample b (the scene above has one sample per frame).
    want = ref.pixel_to_voxel_reference(
        depth, K, poses, 0.05, ref.ReferenceVoxelHash(scene.coords), depth_max=10.0
    )
    assert_voxel_index_equal(runs[0].voxel_index, want[1], points, 0.05)
    assert float((want[1] >= 0).double().mean()) > 0.3


def test_bad_input_raises():
    depth = torch.ones(2, 4, 5)
    K = torch.tensor([[5.0, 0, 2], [0, 5.0, 1.5], [0, 0, 1]])
    poses = torch.eye(4).expand(2, 4, 4).clone()
    scene = ops.VoxelHash(torch.zeros(1, 4, dtype=torch.int32))
    nan_pose = poses.clone()
    nan_pose[1, 0, 3] = math.nan
    with pytest.raises(ValueError, match=r"cam_to_world\[1\] has non-finite"):
        ops.pixel_to_voxel(depth, K, nan_pose, 0.1, scene)
    with pytest.raises(TypeError, match="depth_mm_to_m"):
        ops.backproject(torch.ones(2, 4, 5, dtype=torch.int32), K, poses)
    with pytest.raises(ValueError, match=r"\[B, H, W\]"):
        ops.backproject(torch.ones(4, 5), K, poses)
    with pytest.raises(ValueError, match="K must be"):
        ops.backproject(depth, K[None].expand(3, 3, 3), poses)
    with pytest.raises(ValueError, match="pinhole"):
        skewed = K.clone()
        skewed[0, 1] = 0.5
        ops.backproject(depth, skewed, poses)
    with pytest.raises(ValueError, match="positive focal"):
        ops.backproject(depth, K * torch.tensor([[-1.0], [1.0], [1.0]]), poses)
    with pytest.raises(ValueError, match="last row"):
        bent = poses.clone()
        bent[0, 3, 0] = 0.3
        ops.backproject(depth, K, bent)
    with pytest.raises(ValueError, match="extra_transform holds only 1"):
        ops.pixel_to_voxel(depth, K, poses, 0.1, scene, torch.eye(4)[None], frame_batch=torch.tensor([0, 1]))
    with pytest.raises(ValueError, match="frame_batch must be >= 0"):
        ops.pixel_to_voxel(depth, K, poses, 0.1, scene, frame_batch=torch.tensor([0, -1]))
    with pytest.raises(ValueError, match="voxel_size"):
        ops.pixel_to_voxel(depth, K, poses, 0.0, scene)
    with pytest.raises(ValueError, match="stride"):
        ops.backproject(depth, K, poses, stride=0)
    with pytest.raises(ValueError, match="depth_min <= depth_max"):
        ops.backproject(depth, K, poses, 3.0, 1.0)
    with pytest.raises(TypeError, match="VoxelHash"):
        ops.pixel_to_voxel(depth, K, poses, 0.1, torch.zeros(1, 4))


@pytest.mark.cuda
def test_cuda_matches_cpu_bitwise(gen):
    depth, K, poses = random_frames(gen, frames=4, height=40, width=50)
    extra = random_augmentation(gen)[None].expand(4, 4, 4)
    _, bvu = ref.backproject_reference(depth, K, poses, 0.0, 10.0)
    points = ref.reference_points_float64(depth, K, poses, 0.0, 10.0, extra_transform=extra)
    coords = scene_from_points(gen, points, bvu[:, 0], 0.04)
    for dtype in (torch.float32, torch.float64):
        args = (K, poses, 0.04)
        cpu = ops.pixel_to_voxel(depth.to(dtype), *args, ops.VoxelHash(coords), extra, depth_max=10.0)
        gpu = ops.pixel_to_voxel(
            depth.to(dtype).cuda(), *args, ops.VoxelHash(coords.cuda()), extra, depth_max=10.0
        )
        for a, b in zip(cpu, gpu):
            assert torch.equal(a, b.cpu())
    with pytest.raises(ValueError, match="scene_hash.to"):
        ops.pixel_to_voxel(depth.cuda(), K, poses, 0.04, ops.VoxelHash(coords))
