"""pixvox.geometry against brute-force and hand-computed references."""

from __future__ import annotations

import math

import pytest
import torch

from pixvox.geometry import MAX_VOXEL_COORD, backproject_depth, voxel_coords, voxelize


def test_voxelize_equals_a_dictionary_grouping(seed):
    g = torch.Generator().manual_seed(seed)
    xyz = torch.randn(3000, 3, generator=g, dtype=torch.float64) * 0.4
    colors = torch.rand(3000, 3, generator=g, dtype=torch.float64)
    coords, inverse, mean = voxelize(xyz, 0.1, colors)
    groups: dict[tuple[int, int, int], list[int]] = {}
    for i, p in enumerate(xyz.tolist()):
        groups.setdefault(tuple(math.floor(v / 0.1) for v in p), []).append(i)
    keys = sorted(groups)
    assert [tuple(c) for c in coords.tolist()] == keys
    for v, key in enumerate(keys):
        assert sorted((inverse == v).nonzero().squeeze(1).tolist()) == groups[key]
        torch.testing.assert_close(mean[v], colors[groups[key]].mean(0))


def test_voxel_range_is_enforced():
    vs = 0.01
    ok = torch.tensor([[(MAX_VOXEL_COORD - 1) * vs + vs / 2, -(MAX_VOXEL_COORD - 1) * vs + vs / 2, 0.0]])
    assert voxel_coords(ok.double(), vs).abs().max() == MAX_VOXEL_COORD - 1
    with pytest.raises(ValueError, match="beyond the supported"):
        voxel_coords(torch.tensor([[MAX_VOXEL_COORD * vs + vs / 2, 0.0, 0.0]], dtype=torch.float64), vs)


def test_backproject_depth_hand_example():
    depth = torch.tensor([[2.0, 0.0, float("nan")], [1.0, 9.0, float("inf")]])
    K = torch.tensor([[2.0, 0.0, 1.0], [0.0, 4.0, 0.5], [0.0, 0.0, 1.0]])
    T = torch.eye(4)
    T[:3, 3] = torch.tensor([10.0, 20.0, 30.0])  # camera at (10, 20, 30), axes aligned with the world
    xyz, vu = backproject_depth(depth, K, T, depth_min=0.5, depth_max=5.0)
    assert vu.tolist() == [[0, 0], [1, 0]]
    # pixel (v=0, u=0), z=2: x = (0-1)*2/2 = -1, y = (0-0.5)*2/4 = -0.25
    # pixel (v=1, u=0), z=1: x = -0.5, y = (1-0.5)/4 = 0.125
    torch.testing.assert_close(xyz, torch.tensor([[9.0, 19.75, 32.0], [9.5, 20.125, 31.0]]))
