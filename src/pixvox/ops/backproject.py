"""Batched back-projection of depth frames and matching of their pixels to the voxels of a scene.

Conventions (see :mod:`pixvox.geometry`): OpenCV camera frame, camera-to-world 4x4 poses in metres,
metric z-depth in metres, pixel centres at integer ``(u, v)``, voxel coordinates
``floor(X / voxel_size)``. Every frame carries the batch index of the scene sample it belongs to
(``frame_batch``), so several frames can view one scene. Per pixel the kernels compute in float64:

    x = (u - cx) z / fx,   y = (v - cy) z / fy,   X = E[frame_batch[b]] @ cam_to_world[b] @ [x, y, z, 1]

where ``E`` is the optional per-sample augmentation (``extra_transform``).
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch

from pixvox.ops._extension import kernel
from pixvox.ops.voxel_hash import VoxelHash

_AFFINE_TOL = 1e-6


class BackprojectedPixels(NamedTuple):
    """Kept pixels of a batch of frames, in (frame, row, column) order."""

    #: ``[P, 3]`` points in the world frame (after ``extra_transform``), metres, dtype of the depth.
    points: torch.Tensor
    #: ``[P, 3]`` int64 ``(frame, v, u)``: frame index, row and column of each pixel (full resolution).
    pixel_bvu: torch.Tensor


class PixelVoxelMatch(NamedTuple):
    """Kept pixels of a batch of frames and the scene voxel each one falls in."""

    #: ``[P, 3]`` int64 ``(frame, v, u)`` of each kept pixel, in (frame, row, column) order.
    pixel_bvu: torch.Tensor
    #: ``[P]`` int64 row of the :class:`VoxelHash` coordinates the pixel falls in, -1 if none.
    voxel_index: torch.Tensor
    #: ``[P, 3]`` points in the scene's (augmented) world frame, metres, dtype of the depth.
    points: torch.Tensor


def _check_affine(m: torch.Tensor, name: str) -> None:
    bad_finite = (~torch.isfinite(m)).flatten(1).any(dim=1)
    if bool(bad_finite.any()):
        i = int(bad_finite.nonzero()[0])
        raise ValueError(
            f"{name}[{i}] has non-finite entries (a NaN or inf pose); "
            "drop that frame or sample before matching"
        )
    bottom = torch.tensor([0.0, 0.0, 0.0, 1.0], dtype=torch.float64)
    bad_row = ((m[:, 3, :] - bottom).abs() > _AFFINE_TOL).any(dim=1)
    if bool(bad_row.any()):
        i = int(bad_row.nonzero()[0])
        raise ValueError(
            f"{name}[{i}] is not a rigid/affine 4x4 transform: its last row is {m[i, 3].tolist()}"
        )


def _frame_geometry(
    depth: torch.Tensor,
    K: torch.Tensor,
    cam_to_world: torch.Tensor,
    extra_transform: torch.Tensor | None,
    frame_batch: torch.Tensor | None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Validate the inputs; return depth and float64 per-frame intrinsics, transforms, batch on its device."""
    if not isinstance(depth, torch.Tensor):
        raise TypeError(f"depth must be a torch.Tensor, got {type(depth).__name__}")
    if depth.ndim != 3:
        raise ValueError(
            f"depth must be [B, H, W] metres, got shape {tuple(depth.shape)} (one frame: depth[None])"
        )
    if not depth.is_floating_point():
        raise TypeError(
            f"depth must be floating point metres, got {depth.dtype}; "
            "convert uint16 millimetres with pixvox.geometry.depth_mm_to_m"
        )
    if depth.dtype not in (torch.float32, torch.float64):
        depth = depth.float()
    frames = depth.shape[0]

    K = torch.as_tensor(K).detach().to("cpu", torch.float64)
    if K.shape == (3, 3):
        K = K.expand(frames, 3, 3)
    if K.shape != (frames, 3, 3):
        raise ValueError(f"K must be [B, 3, 3] or [3, 3] with B = {frames}, got {tuple(K.shape)}")
    if frames:
        bad = ~torch.isfinite(K).flatten(1).all(dim=1) | ~(K[:, 0, 0] > 0) | ~(K[:, 1, 1] > 0)
        if bool(bad.any()):
            i = int(bad.nonzero()[0])
            raise ValueError(f"K[{i}] must be finite with positive focal lengths, got {K[i].tolist()}")
        pinhole = torch.tensor([0.0, 0.0, 1.0], dtype=torch.float64)
        off = (K[:, 0, 1].abs() > _AFFINE_TOL) | (K[:, 1, 0].abs() > _AFFINE_TOL)
        off |= ((K[:, 2] - pinhole).abs() > _AFFINE_TOL).any(dim=1)
        if bool(off.any()):
            i = int(off.nonzero()[0])
            raise ValueError(
                f"K[{i}] is not a pinhole matrix [[fx, 0, cx], [0, fy, cy], [0, 0, 1]]: {K[i].tolist()}"
            )
    intrinsics = torch.stack([K[:, 0, 0], K[:, 1, 1], K[:, 0, 2], K[:, 1, 2]], dim=1)

    pose = torch.as_tensor(cam_to_world).detach().to("cpu", torch.float64)
    if pose.shape == (4, 4) and frames == 1:
        pose = pose[None]
    if pose.shape != (frames, 4, 4):
        raise ValueError(f"cam_to_world must be [B, 4, 4] with B = {frames}, got {tuple(pose.shape)}")
    _check_affine(pose, "cam_to_world")

    if frame_batch is None:
        batch = torch.arange(frames, dtype=torch.int64)
    else:
        batch = torch.as_tensor(frame_batch).detach().to("cpu")
        if batch.shape != (frames,) or batch.is_floating_point():
            raise ValueError(
                f"frame_batch must be [B] integers with B = {frames}, got {batch.dtype} {tuple(batch.shape)}"
            )
        batch = batch.long()
        if frames and int(batch.min()) < 0:
            raise ValueError(f"frame_batch must be >= 0, got {batch.tolist()}")

    if extra_transform is not None:
        extra = torch.as_tensor(extra_transform).detach().to("cpu", torch.float64)
        if extra.shape == (4, 4):
            extra = extra[None].expand(int(batch.max()) + 1 if frames else 1, 4, 4)
        if extra.ndim != 3 or extra.shape[1:] != (4, 4):
            raise ValueError(
                f"extra_transform must be [S, 4, 4] (one per scene sample), got {tuple(extra.shape)}"
            )
        if frames and int(batch.max()) >= extra.shape[0]:
            raise ValueError(
                f"frame_batch refers to scene sample {int(batch.max())}, but extra_transform holds only "
                f"{extra.shape[0]} transforms"
            )
        _check_affine(extra, "extra_transform")
        pose = extra[batch] @ pose

    device = depth.device
    return (
        depth.contiguous(),
        intrinsics.contiguous().to(device),
        pose[:, :3, :].contiguous().to(device),
        batch.contiguous().to(device),
    )


def _check_range(depth_min: float, depth_max: float, stride: int) -> tuple[float, float, int]:
    depth_min, depth_max = float(depth_min), float(depth_max)
    if math.isnan(depth_min) or math.isnan(depth_max) or depth_min > depth_max:
        raise ValueError(f"need depth_min <= depth_max (metres), got [{depth_min}, {depth_max}]")
    if isinstance(stride, bool) or int(stride) != stride or stride < 1:
        raise ValueError(f"stride must be an integer >= 1, got {stride!r}")
    return depth_min, depth_max, int(stride)


def backproject(
    depth: torch.Tensor,
    K: torch.Tensor,
    cam_to_world: torch.Tensor,
    depth_min: float = 0.0,
    depth_max: float = math.inf,
    stride: int = 1,
    *,
    extra_transform: torch.Tensor | None = None,
    frame_batch: torch.Tensor | None = None,
) -> BackprojectedPixels:
    """Lift a batch of depth frames to world points.

    Args:
        depth: ``[B, H, W]`` float z-depth in metres; pixels with depth <= 0, NaN, inf or outside
            ``[depth_min, depth_max]`` are dropped.
        K: ``[B, 3, 3]`` (or one ``[3, 3]`` for all) pinhole intrinsics of the depth images, pixels.
        cam_to_world: ``[B, 4, 4]`` camera-to-world poses, metres.
        depth_min, depth_max: kept depth range, metres, inclusive.
        stride: keep pixels whose row and column are multiples of ``stride`` (coordinates stay at
            full resolution: divide by ``stride`` to index a stride-``stride`` feature map).
        extra_transform: optional ``[S, 4, 4]`` per-sample transform applied to the world points
            (3D augmentation), sample ``frame_batch[b]`` for frame ``b``.
        frame_batch: ``[B]`` scene sample of each frame (default: frame ``b`` → sample ``b``).

    Returns:
        :class:`BackprojectedPixels` with ``points`` ``[P, 3]`` (depth dtype) and ``pixel_bvu``
        ``[P, 3]`` int64, in (frame, row, column) order.
    """
    depth_min, depth_max, stride = _check_range(depth_min, depth_max, stride)
    depth, intrinsics, transforms, batch = _frame_geometry(
        depth, K, cam_to_world, extra_transform, frame_batch
    )
    empty_table = torch.empty(0, dtype=torch.int32, device=depth.device)
    empty_entries = torch.empty(0, 2, dtype=torch.int64, device=depth.device)
    pixel_bvu, _, points = kernel("pixel_to_voxel", depth.device)(
        depth,
        intrinsics,
        transforms,
        batch,
        depth_min,
        depth_max,
        stride,
        1.0,
        empty_table,
        empty_entries,
        False,
    )
    return BackprojectedPixels(points=points, pixel_bvu=pixel_bvu)


def pixel_to_voxel(
    depth: torch.Tensor,
    K: torch.Tensor,
    cam_to_world: torch.Tensor,
    voxel_size: float,
    scene_hash: VoxelHash,
    extra_transform: torch.Tensor | None = None,
    *,
    frame_batch: torch.Tensor | None = None,
    depth_min: float = 0.0,
    depth_max: float = math.inf,
    stride: int = 1,
) -> PixelVoxelMatch:
    """Match every kept pixel of a batch of frames to the scene voxel it falls in.

    Args:
        depth: ``[B, H, W]`` float z-depth in metres (invalid: <= 0, NaN, inf, outside the range).
        K: ``[B, 3, 3]`` (or ``[3, 3]``) pinhole intrinsics, pixels.
        cam_to_world: ``[B, 4, 4]`` camera-to-world poses, metres.
        voxel_size: voxel edge of the scene, metres.
        scene_hash: :class:`VoxelHash` of the ``(batch, x, y, z)`` scene voxels, on the depth's device.
        extra_transform: optional ``[S, 4, 4]`` per-sample augmentation (rotation, scale, flip,
            translation) that was applied to the scene's world points before voxelizing; applying it
            to the pixels' world points keeps pixels and voxels matched.
        frame_batch: ``[B]`` scene sample (hash batch index) of each frame, default ``arange(B)``.
        depth_min, depth_max: kept depth range, metres, inclusive.
        stride: keep every ``stride``-th row and column (see :func:`backproject`).

    Returns:
        :class:`PixelVoxelMatch`: ``pixel_bvu`` ``[P, 3]`` int64, ``voxel_index`` ``[P]`` int64 (row of
        the hash's coordinates, -1 where the voxel is not in the scene), ``points`` ``[P, 3]``.
    """
    if not isinstance(scene_hash, VoxelHash):
        raise TypeError(f"scene_hash must be a pixvox.ops.VoxelHash, got {type(scene_hash).__name__}")
    voxel_size = float(voxel_size)
    if not (voxel_size > 0 and math.isfinite(voxel_size)):
        raise ValueError(f"voxel_size must be a positive number of metres, got {voxel_size}")
    depth_min, depth_max, stride = _check_range(depth_min, depth_max, stride)
    depth, intrinsics, transforms, batch = _frame_geometry(
        depth, K, cam_to_world, extra_transform, frame_batch
    )
    if scene_hash.device != depth.device:
        raise ValueError(
            f"scene_hash is on {scene_hash.device} but depth on {depth.device}; "
            "use scene_hash.to(depth.device)"
        )
    pixel_bvu, voxel_index, points = kernel("pixel_to_voxel", depth.device)(
        depth,
        intrinsics,
        transforms,
        batch,
        depth_min,
        depth_max,
        stride,
        voxel_size,
        scene_hash._table,
        scene_hash._entries,
        True,
    )
    return PixelVoxelMatch(pixel_bvu=pixel_bvu, voxel_index=voxel_index, points=points)
