"""Random inputs for the pixvox.ops tests and a voxel-index comparison that tolerates face ties."""

from __future__ import annotations

import math

import torch


def random_rotation(gen: torch.Generator) -> torch.Tensor:
    """Uniform random 3x3 rotation, float64."""
    q, r = torch.linalg.qr(torch.randn(3, 3, generator=gen, dtype=torch.float64))
    q = q * torch.sign(torch.diagonal(r))
    if torch.det(q) < 0:
        q[:, 0] = -q[:, 0]
    return q


def random_pose(gen: torch.Generator, translation: float = 2.0) -> torch.Tensor:
    """Random rigid camera-to-world 4x4, float64."""
    T = torch.eye(4, dtype=torch.float64)
    T[:3, :3] = random_rotation(gen)
    T[:3, 3] = (torch.rand(3, generator=gen, dtype=torch.float64) * 2 - 1) * translation
    return T


def random_augmentation(gen: torch.Generator) -> torch.Tensor:
    """Random similarity with a reflection: rotation, scale in [0.8, 1.2], flip of one axis, translation."""
    E = torch.eye(4, dtype=torch.float64)
    flip = torch.ones(3, dtype=torch.float64)
    flip[int(torch.randint(0, 3, (1,), generator=gen))] = -1.0
    scale = 0.8 + 0.4 * float(torch.rand(1, generator=gen, dtype=torch.float64))
    E[:3, :3] = random_rotation(gen) * flip * scale
    E[:3, 3] = (torch.rand(3, generator=gen, dtype=torch.float64) * 2 - 1) * 3.0
    return E


def random_intrinsics(gen: torch.Generator, frames: int, height: int, width: int) -> torch.Tensor:
    """[B, 3, 3] pinhole intrinsics with focal lengths ~ image size and a principal point near the centre."""
    K = torch.zeros(frames, 3, 3, dtype=torch.float64)
    r = torch.rand(frames, 4, generator=gen, dtype=torch.float64)
    K[:, 0, 0] = width * (0.6 + r[:, 0])
    K[:, 1, 1] = width * (0.6 + r[:, 1])
    K[:, 0, 2] = (width - 1) / 2 + (r[:, 2] - 0.5) * 4
    K[:, 1, 2] = (height - 1) / 2 + (r[:, 3] - 0.5) * 4
    K[:, 2, 2] = 1.0
    return K


def random_depth(
    gen: torch.Generator, frames: int, height: int, width: int, dtype: torch.dtype = torch.float64
) -> torch.Tensor:
    """[B, H, W] depth in metres in (0.2, 5) with holes: zeros, negatives, NaN, +-inf, far values."""
    depth = 0.2 + 4.8 * torch.rand(frames, height, width, generator=gen, dtype=torch.float64)
    kind = torch.rand(frames, height, width, generator=gen)
    depth[kind < 0.05] = 0.0
    depth[(kind >= 0.05) & (kind < 0.07)] = math.nan
    depth[(kind >= 0.07) & (kind < 0.08)] = math.inf
    depth[(kind >= 0.08) & (kind < 0.09)] = -math.inf
    depth[(kind >= 0.09) & (kind < 0.10)] = -1.0
    depth[(kind >= 0.10) & (kind < 0.12)] = 50.0  # beyond a depth_max of 10 m
    return depth.to(dtype)


def unique_rows(rows: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Sorted unique rows of an integer ``[N, D]`` tensor and the inverse ``[N]``; a fast stand-in for
    ``torch.unique(rows, dim=0, return_inverse=True)`` (1-D unique of mixed-radix keys)."""
    rows = rows.long()
    if rows.shape[0] == 0:
        return rows, torch.empty(0, dtype=torch.int64)
    lo = rows.min(dim=0).values
    span = rows.max(dim=0).values - lo + 1
    assert float(torch.prod(span.double())) < 2**62, "rows span too wide to pack"
    key = torch.zeros(rows.shape[0], dtype=torch.int64)
    for d in range(rows.shape[1]):
        key = key * span[d] + (rows[:, d] - lo[d])
    unique_keys, inverse = torch.unique(key, return_inverse=True)
    out = torch.empty(unique_keys.shape[0], rows.shape[1], dtype=torch.int64)
    for d in reversed(range(rows.shape[1])):
        out[:, d] = unique_keys % span[d] + lo[d]
        unique_keys = unique_keys // span[d]
    return out, inverse


def scene_from_points(
    gen: torch.Generator,
    points: torch.Tensor,
    sample: torch.Tensor,
    voxel_size: float,
    keep: float = 0.7,
    extra: int = 200,
) -> torch.Tensor:
    """[N, 4] int32 (batch, x, y, z) scene: a random ``keep`` share of the voxels the points fall in,
    plus ``extra`` random voxels near them, shuffled."""
    xyz = torch.floor(points.double() / voxel_size).long()
    voxels = unique_rows(torch.cat([sample[:, None], xyz], dim=1))[0]
    voxels = voxels[torch.rand(voxels.shape[0], generator=gen) < keep]
    if extra and voxels.shape[0]:
        pick = torch.randint(0, voxels.shape[0], (extra,), generator=gen)
        noise = voxels[pick].clone()
        noise[:, 1:] += torch.randint(-3, 4, (extra, 3), generator=gen)
        voxels = unique_rows(torch.cat([voxels, noise]))[0]
    return voxels[torch.randperm(voxels.shape[0], generator=gen)].int()


def assert_voxel_index_equal(
    got: torch.Tensor, want: torch.Tensor, points64: torch.Tensor, voxel_size: float, max_ties: int = 3
) -> None:
    """``got == want`` except for pixels whose float64 point lies within 1e-9 voxel of a voxel face.

    The kernels compose the augmentation with the pose while the reference applies them in turn, so
    the last bit of a point may differ; only then can a point on a face land in the neighbour voxel.
    """
    got, want = got.cpu(), want.cpu()
    assert got.shape == want.shape, (got.shape, want.shape)
    differ = got != want
    if not bool(differ.any()):
        return
    scaled = points64.cpu()[differ] / voxel_size
    gap = (scaled - torch.round(scaled)).abs().min(dim=1).values
    far = gap > 1e-9 * torch.clamp(scaled.abs().max(dim=1).values, min=1.0)
    bad = differ.nonzero().squeeze(1)[far]
    assert bad.numel() == 0, (
        f"{bad.numel()} pixels map to different voxels, first pixel {int(bad[0])}: "
        f"got {int(got[bad[0]])}, want {int(want[bad[0]])}"
    )
    assert int(differ.sum()) <= max_ties, f"{int(differ.sum())} face ties, expected at most {max_ties}"
