"""Generic RGB-D sequences: ICL-NUIM (Redwood trajectory.log) geometry on real data, 7-Scenes and
folder layouts written by the tests, single real TUM/SUN/NYU frames, bad inputs as counted skips."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
from PIL import Image
from scipy.spatial.transform import Rotation

from pixvox.io.frames import FrameSequence, format_matrix
from pixvox.io.fusions import FusionIndex
from pixvox.prep.fusion import make_fusions
from pixvox.prep.sequence import SequenceError, export_sequence, main, read_trajectory_log
from tests.prep.sequence.reprojection import reprojection_error


def test_icl_livingroom_geometry(shared_data, tmp_path):
    src = shared_data / "icl_livingroom1"
    info = export_sequence(src, tmp_path / "icl", frame_skip=5, max_frames=6)
    assert info["frames"] == [0, 5, 10, 15, 20, 25] and info["skipped"] == []
    seq = FrameSequence(tmp_path / "icl")
    np.testing.assert_array_equal(seq.intrinsics, [[525.0, 0, 319.5], [0, 525.0, 239.5], [0, 0, 1]])
    log = read_trajectory_log(src / "trajectory.log")
    assert len(log) == 211
    frames = [seq.read(i) for i in seq.frame_ids]
    for f in frames:
        np.testing.assert_array_equal(f.cam_to_world, log[f.frame_id])
        raw = np.asarray(Image.open(src / "depth" / f"{f.frame_id:05d}.png"))
        np.testing.assert_array_equal(f.depth_mm, raw)
    for a, b in zip(frames, frames[1:]):  # frame k's depth seen from frame k+5
        err, overlap = reprojection_error(a, b)
        assert err < 0.01 and overlap > 0.5, (a.frame_id, err, overlap)
    # Fusing consecutive frames: each frame's points land on the fused surface of the others.
    s = make_fusions(tmp_path / "icl", tmp_path / "fus", frames_per_sample=3, progress=False)
    assert s["samples"] == 2 and FusionIndex.load(tmp_path / "fus").load_sample(0).num_voxels > 10_000


def test_icl_wrong_pose_direction_is_detected(shared_data, tmp_path):
    # The same check fails when poses are inverted (world-to-camera): the test above can fail.
    export_sequence(shared_data / "icl_livingroom1", tmp_path / "icl", frame_skip=20, max_frames=2)
    seq = FrameSequence(tmp_path / "icl")
    a, b = seq.read(0), seq.read(20)
    a.cam_to_world, b.cam_to_world = np.linalg.inv(a.cam_to_world), np.linalg.inv(b.cam_to_world)
    assert reprojection_error(a, b)[0] > 0.01


def random_pose(rng):
    T = np.eye(4)
    T[:3, :3] = Rotation.random(random_state=int(rng.integers(2**31))).as_matrix()
    T[:3, 3] = rng.uniform(-2, 2, 3)
    return T


def test_seven_scenes_layout_with_bad_frames(tmp_path, seed, caplog):
    rng = np.random.default_rng(seed)
    d = tmp_path / "seq-01"
    d.mkdir()
    depths, poses = {}, {}
    for i in range(7):
        stem = d / f"frame-{i:06d}"
        rgb = np.repeat(np.repeat(rng.integers(0, 256, (3, 4, 3)), 16, 0), 16, 1).astype(np.uint8)
        Image.fromarray(rgb).save(f"{stem}.color.png")
        depth = rng.integers(0, 5000, (48, 64)).astype(np.uint16)
        depth[0, :5] = 65535  # 7-Scenes' "no depth"
        Image.fromarray(depth).save(f"{stem}.depth.png")
        depths[i] = depth
        poses[i] = random_pose(rng)
        (d / f"frame-{i:06d}.pose.txt").write_text(format_matrix(poses[i]))
    (d / "frame-000002.pose.txt").write_text(format_matrix(np.full((4, 4), np.nan)))
    (d / "frame-000003.pose.txt").unlink()
    (d / "frame-000004.depth.png").write_bytes(b"\x89PNG\r\n\x1a\n broken")
    with caplog.at_level("WARNING", logger="pixvox.prep.sequence"):
        info = export_sequence(d, tmp_path / "out")
    assert info["frames"] == [0, 1, 5, 6]
    reasons = {s["frame"]: s["reason"] for s in info["skipped"]}
    assert "non-finite" in reasons[2] and "no pose" in reasons[3] and "frame-000004.depth.png" in reasons[4]
    # each skip is logged with its file (the fault campaign's bar: a counted skip the log names)
    assert "skipped frame 4" in caplog.text and "frame-000004.depth.png" in caplog.text
    seq = FrameSequence(tmp_path / "out")
    np.testing.assert_array_equal(seq.intrinsics, [[585.0, 0, 320.0], [0, 585.0, 240.0], [0, 0, 1]])
    for i in seq.frame_ids:
        f = seq.read(i)
        np.testing.assert_array_equal(f.depth_mm, np.where(depths[i] == 65535, 0, depths[i]))
        np.testing.assert_array_equal(f.cam_to_world, poses[i])
    # Rerunning with the same options keeps the export; frame skip is applied on frame ids.
    assert export_sequence(d, tmp_path / "out")["frames"] == [0, 1, 5, 6]
    assert export_sequence(d, tmp_path / "skip", frame_skip=3)["frames"] == [0, 6]


def test_redwood_layout_intrinsics_are_column_major(tmp_path, seed):
    rng = np.random.default_rng(seed)
    d = tmp_path / "seq"
    (d / "color").mkdir(parents=True)
    (d / "depth").mkdir()
    entries = []
    for i in range(3):
        Image.fromarray(rng.integers(0, 256, (24, 32, 3)).astype(np.uint8)).save(d / "color" / f"{i:05d}.jpg")
        Image.fromarray(rng.integers(1, 3000, (24, 32)).astype(np.uint16)).save(d / "depth" / f"{i:05d}.png")
        T = random_pose(rng) if i != 1 else np.full((4, 4), np.inf)
        entries.append(f"{i} {i} {i + 1}\n" + format_matrix(T))
    (d / "trajectory.log").write_text("".join(entries))
    cam = {"width": 32, "height": 24, "intrinsic_matrix": [30.0, 0, 0, 0, 31.0, 0, 15.5, 11.5, 1]}
    (d / "camera_intrinsic.json").write_text(json.dumps(cam))
    info = export_sequence(d, tmp_path / "out")
    assert info["frames"] == [0, 2] and info["skipped"][0]["frame"] == 1
    assert f"{d / 'trajectory.log'} entry 1" in info["skipped"][0]["reason"]  # names the pose file
    np.testing.assert_array_equal(
        FrameSequence(tmp_path / "out").intrinsics, [[30, 0, 15.5], [0, 31, 11.5], [0, 0, 1]]
    )
    (d / "trajectory.log").write_text("".join(entries)[:-10])
    with pytest.raises(SequenceError, match="trajectory.log"):
        export_sequence(d, tmp_path / "out2")


@pytest.mark.parametrize(
    "name, color, depth, fmt, median_range",
    [
        ("tum", "TUM_color.png", "TUM_depth.png", "scale:5000", (0.5, 6.0)),
        ("sun", "SUN_color.jpg", "SUN_depth.png", "sunrgbd", (0.5, 6.0)),
        ("nyu", "NYU_color.ppm", "NYU_depth.pgm", "nyu-raw", (1.0, 6.0)),
    ],
)
def test_real_single_frames_through_folders_layout(
    shared_data, tmp_path, name, color, depth, fmt, median_range
):
    d = tmp_path / name
    for sub in ("color", "depth", "pose"):
        (d / sub).mkdir(parents=True)
    src = shared_data / "single_frames"
    os.symlink(src / color, d / "color" / f"000000{os.path.splitext(color)[1]}")
    os.symlink(src / depth, d / "depth" / f"000000{os.path.splitext(depth)[1]}")
    (d / "pose" / "000000.txt").write_text(format_matrix(np.eye(4)))
    (d / "intrinsics.txt").write_text("525 0 319.5\n0 525 239.5\n0 0 1\n")
    assert main(["--input", str(d), "--out", str(tmp_path / "out"), "--depth-format", fmt]) == 0
    f = FrameSequence(tmp_path / "out").read(0)
    assert f.color.shape == (480, 640, 3) and f.depth_mm.shape == (480, 640)
    valid = f.depth_mm[f.depth_mm > 0] / 1000.0
    assert valid.size > 0.5 * f.depth_mm.size
    assert median_range[0] < np.median(valid) < median_range[1]
    s = make_fusions(tmp_path / "out", tmp_path / "fus", progress=False)
    assert s["samples"] == 1 and s["skipped"] == []


def test_unknown_layout_and_missing_intrinsics(tmp_path):
    with pytest.raises(SequenceError, match="no known layout"):
        export_sequence(tmp_path, tmp_path / "out")
    for sub in ("color", "depth", "pose"):
        (tmp_path / "x" / sub).mkdir(parents=True)
    with pytest.raises(SequenceError, match="intrinsics"):
        export_sequence(tmp_path / "x", tmp_path / "out")
