"""pixvox.conformance.harness: the room scan written as PLY reads back as open3d would give it."""

from __future__ import annotations

import numpy as np
import pytest

from pixvox.conformance.harness import open3d_standin, write_room_ply


def _room(tmp_path, n=500, seed=0):
    rng = np.random.default_rng(seed)
    room = tmp_path / "room"
    room.mkdir()
    coord = rng.uniform(-3, 3, (n, 3)).astype(np.float32)
    color = rng.integers(0, 256, (n, 3), dtype=np.uint8)
    np.save(room / "coord.npy", coord)
    np.save(room / "color.npy", color)
    return room, coord, color


def test_room_round_trip(tmp_path, seed):
    room, coord, color = _room(tmp_path, seed=seed)
    out = tmp_path / "1.ply"
    assert write_room_ply(room, out) == len(coord)
    pcd = open3d_standin().io.read_point_cloud(str(out))
    # open3d gives float64 points and colors in [0, 1]
    assert pcd.points.dtype == np.float64 and pcd.colors.dtype == np.float64
    np.testing.assert_array_equal(pcd.points, coord.astype(np.float64))
    np.testing.assert_array_equal(pcd.colors, color.astype(np.float64) / 255.0)
    assert not list(tmp_path.glob("*.tmp*")), "the PLY is written atomically"


def test_real_room_round_trip(shared_data, tmp_path):
    room = shared_data / "scannet_pointcept" / "scene0011_00"
    out = tmp_path / "1.ply"
    n = write_room_ply(room, out)
    pcd = open3d_standin().io.read_point_cloud(str(out))
    assert n == len(np.load(room / "coord.npy")) == len(pcd.points) > 100_000
    np.testing.assert_array_equal(pcd.points, np.load(room / "coord.npy").astype(np.float64))


def test_bad_rooms_are_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="coord.npy"):
        write_room_ply(tmp_path, tmp_path / "1.ply")
    room, coord, _ = _room(tmp_path)
    np.save(room / "color.npy", np.zeros((3, 3), np.uint8))
    with pytest.raises(ValueError, match=r"must both be \(N, 3\)"):
        write_room_ply(room, tmp_path / "1.ply")
