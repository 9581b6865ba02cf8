"""Exported-frames format: value-exact round trips, validation errors, intrinsics scaling."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from pixvox.io.frames import (
    FrameFormatError,
    FrameSequence,
    FrameWriter,
    InvalidPoseError,
    RGBDFrame,
    check_pose,
    find_scene_dirs,
    frame_paths,
    resize_frame,
    scale_intrinsics,
)


def random_pose(rng: np.random.Generator) -> np.ndarray:
    T = np.eye(4)
    T[:3, :3] = Rotation.random(random_state=rng.integers(2**31)).as_matrix()
    T[:3, 3] = rng.uniform(-5, 5, 3)
    return T


def test_round_trip(tmp_path, seed):
    rng = np.random.default_rng(seed)
    H, W = 16 * int(rng.integers(1, 4)), 16 * int(rng.integers(1, 4))
    K = np.array([[rng.uniform(20, 60), 0, W / 2], [0, rng.uniform(20, 60), H / 2], [0, 0, 1]])
    ids = sorted(rng.choice(1000, size=4, replace=False).tolist())
    written = {}
    w = FrameWriter(tmp_path / "s", source="test", intrinsics=K, meta={"seed": seed})
    for i in ids:
        # flat 16x16 blocks (aligned with JPEG's chroma MCUs), so the lossy JPEG stays within a few levels
        blocks = rng.integers(0, 256, (H // 16, W // 16, 3), dtype=np.uint8)
        color = np.repeat(np.repeat(blocks, 16, 0), 16, 1)
        depth = rng.integers(0, 65536, (H, W), dtype=np.uint16)
        T = random_pose(rng)
        w.add(i, color, depth, T)
        written[i] = (color, depth, T)
    w.skip(5000, "invalid pose")
    assert not (tmp_path / "s" / "frames.json").exists()  # not complete until finish()
    w.finish()
    seq = FrameSequence(tmp_path / "s")
    assert seq.frame_ids == ids and seq.meta == {"seed": seed}
    assert seq.skipped == [{"frame": 5000, "reason": "invalid pose"}]
    np.testing.assert_array_equal(seq.intrinsics, K)
    for f in seq:
        color, depth, T = written[f.frame_id]
        np.testing.assert_array_equal(f.depth_mm, depth)
        np.testing.assert_array_equal(f.cam_to_world, T)  # bit-exact text round trip
        assert f.color.shape == color.shape
        assert np.abs(f.color.astype(int) - color).mean() < 6


@pytest.mark.parametrize(
    "bad",
    [
        np.full((4, 4), np.nan),
        np.diag([1.0, 1.0, 1.0, 2.0]),
        np.diag([2.0, 1.0, 1.0, 1.0]),
        np.diag([-1.0, 1.0, 1.0, 1.0]),
        np.eye(3),
    ],
)
def test_bad_poses_rejected(bad):
    with pytest.raises(InvalidPoseError, match="where"):
        check_pose(bad, "where")


def test_writer_rejects_bad_frames(tmp_path):
    w = FrameWriter(tmp_path / "s", source="t", intrinsics=np.eye(3))
    ok_c, ok_d = np.zeros((4, 5, 3), np.uint8), np.zeros((4, 5), np.uint16)
    with pytest.raises(FrameFormatError, match="register"):
        w.add(0, np.zeros((4, 6, 3), np.uint8), ok_d, np.eye(4))
    with pytest.raises(FrameFormatError, match="uint16"):
        w.add(0, ok_c, ok_d.astype(np.float32), np.eye(4))
    with pytest.raises(InvalidPoseError):
        w.add(0, ok_c, ok_d, np.full((4, 4), -np.inf))
    w.add(0, ok_c, ok_d, np.eye(4))
    with pytest.raises(FrameFormatError, match="differs"):
        w.add(1, np.zeros((5, 5, 3), np.uint8), np.zeros((5, 5), np.uint16), np.eye(4))


def test_reader_errors_name_files(tmp_path):
    with pytest.raises(FrameFormatError, match="incomplete"):
        FrameSequence(tmp_path)
    w = FrameWriter(tmp_path / "s", source="t", intrinsics=np.eye(3))
    w.add(3, np.zeros((4, 5, 3), np.uint8), np.zeros((4, 5), np.uint16), np.eye(4))
    w.finish()
    paths = frame_paths(tmp_path / "s", 3)
    paths["pose"].write_text("1 0 0 0\n0 1 0 0\n0 0 1 nan\n0 0 0 1\n")
    with pytest.raises(InvalidPoseError, match="000003.txt"):
        FrameSequence(tmp_path / "s").read(3)
    paths["pose"].write_text("1 0 0\n")
    with pytest.raises(FrameFormatError, match="000003.txt"):
        FrameSequence(tmp_path / "s").read(3)
    paths["color"].write_bytes(b"\xff\xd8garbage")
    with pytest.raises(FrameFormatError, match="000003.jpg"):
        FrameSequence(tmp_path / "s").read(3)
    (tmp_path / "s" / "frames.json").write_text("{not json")
    with pytest.raises(FrameFormatError, match="frames.json"):
        FrameSequence(tmp_path / "s")


def test_rewriting_marks_folder_incomplete_until_done(tmp_path):
    w = FrameWriter(tmp_path / "s", source="t", intrinsics=np.eye(3))
    w.finish()
    assert find_scene_dirs(tmp_path) == ([tmp_path / "s"], [])
    FrameWriter(tmp_path / "s", source="t", intrinsics=np.eye(3))  # a new export starts
    assert find_scene_dirs(tmp_path) == ([], [tmp_path / "s"])


def test_a_new_writer_removes_temp_files_of_a_killed_export(tmp_path):
    stale = tmp_path / "s" / "color" / ".000003.jpg.tmp-12345-abcdef01"
    stale.parent.mkdir(parents=True)
    stale.write_bytes(b"\xff\xd8 half a jpeg")
    FrameWriter(tmp_path / "s", source="t", intrinsics=np.eye(3))
    assert not stale.exists()


def test_scale_intrinsics_keeps_projections(seed):
    # Projecting a 3D point with scaled intrinsics lands on the same spot of the resized image:
    # continuous coordinates (u + 0.5) scale by W'/W.
    rng = np.random.default_rng(seed)
    H, W = 480, 640
    h, w = int(rng.integers(50, 480)), int(rng.integers(50, 640))
    K = np.array(
        [
            [rng.uniform(400, 600), 0, rng.uniform(300, 340)],
            [0, rng.uniform(400, 600), rng.uniform(220, 260)],
            [0, 0, 1],
        ]
    )
    K2 = scale_intrinsics(K, (H, W), (h, w))
    X = np.column_stack([rng.uniform(-1, 1, 50), rng.uniform(-1, 1, 50), rng.uniform(1, 5, 50)])
    p1 = (K @ X.T).T
    p2 = (K2 @ X.T).T
    u1, v1 = p1[:, 0] / p1[:, 2], p1[:, 1] / p1[:, 2]
    u2, v2 = p2[:, 0] / p2[:, 2], p2[:, 1] / p2[:, 2]
    np.testing.assert_allclose(u2 + 0.5, (u1 + 0.5) * w / W, rtol=1e-12, atol=1e-9)
    np.testing.assert_allclose(v2 + 0.5, (v1 + 0.5) * h / H, rtol=1e-12, atol=1e-9)


def test_resize_frame_keeps_depth_geometry():
    # A fronto-parallel ramp: depth at output pixel u' equals input depth at its source pixel.
    depth = np.tile(np.arange(640, dtype=np.uint16) * 3 + 500, (480, 1))
    f = RGBDFrame(
        0,
        np.zeros((480, 640, 3), np.uint8),
        depth,
        np.eye(4),
        np.array([[525.0, 0, 319.5], [0, 525.0, 239.5], [0, 0, 1]]),
    )
    g = resize_frame(f, (240, 320))
    assert g.color.shape == (240, 320, 3) and g.depth_mm.dtype == np.uint16
    np.testing.assert_array_equal(g.depth_mm[0], depth[0, 1::2])
    np.testing.assert_allclose(g.intrinsics[0, 2], 159.5)  # 0.5 * (319.5 + 0.5) - 0.5
