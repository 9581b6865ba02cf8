"""Trajectory and timestamp readers against hand-computed cases."""

from __future__ import annotations

import math

import numpy as np
import pytest

from pixvox.prep.sequence.trajectories import (
    SequenceError,
    associate,
    interpolate_pose,
    read_intrinsics_txt,
    read_tum_list,
    read_tum_trajectory,
)


def rot_z(deg: float) -> np.ndarray:
    a = math.radians(deg)
    return np.array([[math.cos(a), -math.sin(a), 0], [math.sin(a), math.cos(a), 0], [0, 0, 1]])


def test_tum_trajectory_hand_example(tmp_path):
    s = math.sqrt(0.5)
    (tmp_path / "gt.txt").write_text(
        "# timestamp tx ty tz qx qy qz qw\n"
        f"10.0 1 2 3 0 0 {s} {s}\n"  # 90 degrees about z
        "\n"
        "10.5 -1 0 0.5 1 0 0 0\n"  # 180 degrees about x
    )
    t, T = read_tum_trajectory(tmp_path / "gt.txt")
    assert t.tolist() == [10.0, 10.5]
    np.testing.assert_allclose(T[0][:3, :3], [[0, -1, 0], [1, 0, 0], [0, 0, 1]], atol=1e-12)
    np.testing.assert_allclose(T[0][:3, 3], [1, 2, 3])
    np.testing.assert_allclose(T[1][:3, :3], np.diag([1.0, -1.0, -1.0]), atol=1e-12)
    np.testing.assert_array_equal(T[:, 3], [[0, 0, 0, 1], [0, 0, 0, 1]])
    (tmp_path / "bad.txt").write_text("# header\n1 2 3\n")
    with pytest.raises(SequenceError, match="bad.txt: line 2: expected 8"):
        read_tum_trajectory(tmp_path / "bad.txt")
    (tmp_path / "nan.txt").write_text("1 0 0 x 0 0 0 1\n")
    with pytest.raises(SequenceError, match="nan.txt: line 1: not a number"):
        read_tum_trajectory(tmp_path / "nan.txt")
    with pytest.raises(SequenceError, match="absent.txt: file not found"):
        read_tum_trajectory(tmp_path / "absent.txt")


def test_tum_list(tmp_path):
    (tmp_path / "rgb.txt").write_text(
        "# color images\n# timestamp filename\n1.25 rgb/1.25.png\n2.5 rgb/2.5.png\n"
    )
    assert read_tum_list(tmp_path / "rgb.txt") == [(1.25, "rgb/1.25.png"), (2.5, "rgb/2.5.png")]


def test_association_is_one_to_one_closest_first():
    a = np.array([0.0, 0.010, 0.100, 0.200])
    b = np.array([0.012, 0.105, 0.5, 0.0])
    # 0.010 ↔ 0.012 (2 ms) wins over 0.0 ↔ 0.012; 0.0 then takes b=0.0 exactly; 0.200 has no partner.
    assert associate(a, b, 0.02) == {1: 0, 0: 3, 2: 1}
    assert associate(a, b, 0.001) == {0: 3}
    assert associate(np.array([]), b, 0.02) == {}


def test_pose_interpolation_hand_example():
    stamps = np.array([1.0, 2.0, 2.05, 4.0])
    poses = np.stack([np.eye(4)] * 4)
    poses[1][:3, :3], poses[1][:3, 3] = rot_z(0), [0, 0, 0]
    poses[2][:3, :3], poses[2][:3, 3] = rot_z(90), [1, 2, 0]
    T = interpolate_pose(stamps, poses, 2.025, max_gap=0.1)  # halfway: 45 degrees, halfway position
    np.testing.assert_allclose(T[:3, :3], rot_z(45), atol=1e-12)
    np.testing.assert_allclose(T[:3, 3], [0.5, 1.0, 0.0])
    T = interpolate_pose(stamps, poses, 2.04, max_gap=0.1)  # 80% of the way
    np.testing.assert_allclose(T[:3, :3], rot_z(72), atol=1e-12)
    np.testing.assert_array_equal(interpolate_pose(stamps, poses, 2.0, max_gap=0.1), poses[1])
    np.testing.assert_array_equal(interpolate_pose(stamps, poses, 4.0, max_gap=0.1), poses[3])
    assert interpolate_pose(stamps, poses, 3.0, max_gap=0.1) is None  # a 1.95 s tracking gap
    assert interpolate_pose(stamps, poses, 0.5, max_gap=0.1) is None  # before the trajectory
    assert interpolate_pose(stamps, poses, 4.5, max_gap=0.1) is None  # after it


def test_intrinsics_text(tmp_path):
    (tmp_path / "k4.txt").write_text("500 0 320 0\n0 510 240 0\n0 0 1 0\n0 0 0 1\n")
    np.testing.assert_array_equal(
        read_intrinsics_txt(tmp_path / "k4.txt"), [[500, 0, 320], [0, 510, 240], [0, 0, 1]]
    )
    (tmp_path / "bad.txt").write_text("1 2 3\n")
    with pytest.raises(SequenceError, match="bad.txt"):
        read_intrinsics_txt(tmp_path / "bad.txt")
