"""pixvox.geometry against brute-force and hand-computed references."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from pixvox.geometry import MAX_VOXEL_COORD, backproject_depth, voxel_coords, voxelize


def brute_force_voxels(
    xyz: np.ndarray, vs: float, values: np.ndarray
) -> dict[tuple, tuple[list[int], list[float]]]:
    """{voxel: (point rows, per-channel sums accumulated one point at a time in point order)}."""
    groups: dict[tuple, tuple[list[int], list[float]]] = {}
    for i, p in enumerate(xyz.tolist()):
        key = tuple(math.floor(v / vs) for v in p)
        rows, sums = groups.setdefault(key, ([], [0.0] * values.shape[1]))
        rows.append(i)
        for k, v in enumerate(values[i].tolist()):
            sums[k] += v
    return groups


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_voxelize_equals_a_dictionary_grouping(seed, dtype):
    rng = np.random.default_rng(seed)
    xyz = (rng.normal(size=(3000, 3)) * 0.4).astype(dtype)
    xyz[1500:] = xyz[rng.integers(0, 1500, 1500)]  # points sharing voxels exactly
    colors = rng.uniform(0, 255, (3000, 3))
    coords, inverse, mean = voxelize(xyz, 0.1, colors)
    groups = brute_force_voxels(xyz.astype(np.float64), 0.1, colors)
    keys = sorted(groups)
    assert coords.dtype == np.int32 and inverse.dtype == np.int64 and mean.dtype == np.float64
    assert [tuple(c) for c in coords.tolist()] == keys  # sorted lexicographically
    for v, key in enumerate(keys):
        rows, sums = groups[key]
        assert np.flatnonzero(inverse == v).tolist() == rows
        # Summed in point order, then divided: the same float64 result, bit for bit.
        assert mean[v].tolist() == [s / len(rows) for s in sums]
    t_coords, t_inverse, _ = voxelize(torch.from_numpy(xyz), 0.1)  # torch input: same result
    np.testing.assert_array_equal(t_coords, coords)
    np.testing.assert_array_equal(t_inverse, inverse)


def test_voxelize_corner_cases():
    coords, inverse, mean = voxelize(np.zeros((0, 3)), 0.05, np.zeros((0, 3)))
    assert coords.shape == (0, 3) and inverse.shape == (0,) and mean.shape == (0, 3)
    # Negative coordinates floor away from zero; a point on a voxel face belongs to the upper voxel.
    coords, inverse, _ = voxelize(np.array([[-0.01, 0.0, 0.1], [0.0, -0.0, 0.099999]]), 0.1)
    assert coords.tolist() == [[-1, 0, 1], [0, 0, 0]] and inverse.tolist() == [0, 1]


def test_voxel_range_is_enforced():
    vs = 0.01
    ok = np.array([[(MAX_VOXEL_COORD - 1) * vs + vs / 2, -(MAX_VOXEL_COORD - 1) * vs + vs / 2, 0.0]])
    assert np.abs(voxel_coords(ok, vs)).max() == MAX_VOXEL_COORD - 1
    coords, _, _ = voxelize(ok, vs)  # the packed keys hold the extreme coordinates
    assert coords.tolist() == [[MAX_VOXEL_COORD - 1, -(MAX_VOXEL_COORD - 1), 0]]
    for bad in (MAX_VOXEL_COORD * vs + vs / 2, -MAX_VOXEL_COORD * vs - vs / 2):
        with pytest.raises(ValueError, match="beyond the supported"):
            voxelize(np.array([[0.0, bad, 0.0]]), vs)


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
