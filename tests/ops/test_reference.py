"""The pure-PyTorch reference itself, against brute force and pixvox.geometry (so it can be trusted)."""

from __future__ import annotations

import pytest
import torch

from pixvox.geometry import MAX_VOXEL_COORD, backproject_depth
from pixvox.ops import reference as ref

from ._helpers import random_depth, random_intrinsics, random_pose


def test_reference_hash_matches_dict(gen):
    coords = torch.unique(
        torch.cat(
            [torch.randint(0, 4, (3000, 1), generator=gen), torch.randint(-30, 30, (3000, 3), generator=gen)],
            dim=1,
        ),
        dim=0,
    )
    coords[:10, 1] = MAX_VOXEL_COORD - 1 - torch.arange(10)
    coords = coords[torch.randperm(coords.shape[0], generator=gen)]
    table = {tuple(row): i for i, row in enumerate(coords.tolist())}
    queries = torch.cat([coords, coords + torch.tensor([0, 0, 1, 0]), coords + torch.tensor([4, 0, 0, 0])])
    queries[-5:, 2] = MAX_VOXEL_COORD
    got = ref.ReferenceVoxelHash(coords).lookup(queries[:, 0], queries[:, 1:])
    assert got.tolist() == [table.get(tuple(q), -1) for q in queries.tolist()]


def test_reference_hash_rejects_duplicates():
    with pytest.raises(ValueError, match="duplicate"):
        ref.ReferenceVoxelHash(torch.tensor([[0, 1, 2, 3], [0, 1, 2, 3]]))


def test_reference_backprojection_matches_geometry(gen):
    """pixvox.geometry.backproject_depth (one frame, matrix products) is a second, independent route."""
    frames, height, width = 3, 17, 21
    depth = random_depth(gen, frames, height, width)
    K = random_intrinsics(gen, frames, height, width)
    poses = torch.stack([random_pose(gen) for _ in range(frames)])
    points, bvu = ref.backproject_reference(depth, K, poses, 0.0, 10.0)
    for b in range(frames):
        want_xyz, want_vu = backproject_depth(depth[b], K[b], poses[b], 0.0, 10.0)
        mine = bvu[:, 0] == b
        assert torch.equal(bvu[mine, 1:], want_vu)
        torch.testing.assert_close(points[mine], want_xyz, rtol=1e-12, atol=1e-12)


def test_reference_scatter_and_gather_match_loops(gen):
    pixels, voxels, channels = 300, 12, 3
    index = torch.randint(-1, voxels - 2, (pixels,), generator=gen)
    feats = torch.randn(pixels, channels, generator=gen, dtype=torch.float64)
    voxel_feats = torch.randn(voxels, channels, generator=gen, dtype=torch.float64)
    rows = {v: [p for p in range(pixels) if int(index[p]) == v] for v in range(voxels)}
    for reduce in ("sum", "mean", "max"):
        got, counts = ref.scatter_to_voxels_reference(feats, index, voxels, reduce)
        assert counts.tolist() == [len(rows[v]) for v in range(voxels)]
        for v in range(voxels):
            if not rows[v]:
                assert got[v].tolist() == [0.0] * channels
                continue
            block = feats[rows[v]]
            want = {"sum": block.sum(0), "mean": block.mean(0), "max": block.max(0).values}[reduce]
            torch.testing.assert_close(got[v], want, rtol=1e-14, atol=1e-14)
    gathered = ref.gather_from_voxels_reference(voxel_feats, index)
    for p in range(pixels):
        v = int(index[p])
        assert gathered[p].tolist() == (voxel_feats[v].tolist() if v >= 0 else [0.0] * channels)
