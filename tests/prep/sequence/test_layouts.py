"""The sequence layouts of issue 11 on real frames: a ScanNet export (rgb/, depth/, intrinsic.txt,
TUM-format gt_pose.txt), TUM RGB-D's own rgb.txt/depth.txt/groundtruth.txt (built here from real frames)
and SUN3D fragments (7-Scenes style with camera-intrinsics.txt). The poses are checked by projecting one
frame's depth into another; the same check with the poses read inverted fails."""

from __future__ import annotations

import os

import numpy as np
import pytest
from PIL import Image

from pixvox.io.frames import FrameSequence
from pixvox.prep.sequence import SequenceError, export_sequence, find_sequences, load_layout, main
from pixvox.prep.sequence.layouts import TUM_K
from tests.prep.sequence.reprojection import reprojection_error


def quaternion_matrix(qx: float, qy: float, qz: float, qw: float) -> np.ndarray:
    """Rotation matrix of a unit quaternion, written out from the textbook formula (independent of scipy)."""
    n = np.sqrt(qx * qx + qy * qy + qz * qz + qw * qw)
    x, y, z, w = qx / n, qy / n, qz / n, qw / n
    return np.array(
        [
            [1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
            [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
            [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)],
        ]
    )


def tum_lines(path) -> list[list[float]]:
    return [[float(v) for v in ln.split()] for ln in path.read_text().splitlines() if ln and ln[0] != "#"]


def check_poses(frames, step_err: float, inverted_err: float) -> None:
    """Each frame's depth seen from the next agrees within ``step_err`` metres (median). Between the first
    and the last frame, with the poses inverted (read as world-to-camera), the disagreement exceeds
    ``inverted_err`` and twice the disagreement with the poses as read."""
    for a, b in zip(frames, frames[1:]):
        err, overlap = reprojection_error(a, b)
        assert err < step_err and overlap > 0.3, (a.frame_id, b.frame_id, err, overlap)
    a, b = frames[0], frames[-1]
    right = reprojection_error(a, b)[0]
    a.cam_to_world, b.cam_to_world = np.linalg.inv(a.cam_to_world), np.linalg.inv(b.cam_to_world)
    wrong = reprojection_error(a, b)[0]
    assert wrong > inverted_err and wrong > 2 * right, (right, wrong)


def test_scannet_export_layout(shared_data, tmp_path):
    src = shared_data / "scannet_scene0378_00"
    assert load_layout(src).kind == "scannet-export"
    info = export_sequence(src, tmp_path / "s", frame_skip=10, max_frames=4)
    assert info["frames"] == [0, 10, 20, 30] and info["skipped"] == []
    seq = FrameSequence(tmp_path / "s")
    K = np.loadtxt(src / "intrinsic.txt")[:3, :3]
    np.testing.assert_allclose(seq.intrinsics, K)
    lines = tum_lines(src / "gt_pose.txt")
    assert len(lines) == 190
    frames = [seq.read(i) for i in seq.frame_ids]
    for f in frames:
        t, tx, ty, tz, qx, qy, qz, qw = lines[f.frame_id]
        np.testing.assert_allclose(f.cam_to_world[:3, :3], quaternion_matrix(qx, qy, qz, qw), atol=1e-9)
        np.testing.assert_allclose(f.cam_to_world[:3, 3], [tx, ty, tz])
        raw = np.asarray(Image.open(src / "depth" / f"frame_{f.frame_id:05d}.png"))
        np.testing.assert_array_equal(f.depth_mm, raw)
    # README: 7-9 mm median disagreement 10 frames apart; read as world-to-camera 400-900 mm.
    check_poses(frames, step_err=0.015, inverted_err=0.2)


def test_sun3d_fragments_layout(shared_data, tmp_path):
    src = shared_data / "sun3d_fragments"
    assert find_sequences(src) == [src / "fragment-1-rgbd-frames", src / "fragment-2-rgbd-frames"]
    frag = src / "fragment-1-rgbd-frames"
    info = export_sequence(frag, tmp_path / "f1", frame_skip=10)
    assert info["frames"] == [940, 950, 960, 970, 980] and info["skipped"] == []
    seq = FrameSequence(tmp_path / "f1")
    np.testing.assert_allclose(seq.intrinsics, np.loadtxt(frag / "camera-intrinsics.txt"))
    assert seq.intrinsics[0, 0] == pytest.approx(570.342205)
    frames = [seq.read(i) for i in seq.frame_ids]
    for f in frames:
        np.testing.assert_allclose(f.cam_to_world, np.loadtxt(frag / f"frame-{f.frame_id:06d}.pose.txt"))
    # README: 35-40 mm median disagreement 10-20 frames apart (SUN3D's own reconstruction); measured
    # here 23-35 mm 10 frames apart, 61-66 mm 40 apart, and 150-240 mm 40 apart with inverted poses.
    check_poses(frames, step_err=0.05, inverted_err=0.12)
    # Both fragments in one call: --batch over the folder of sequences.
    assert main(["--input", str(src), "--batch", "--out", str(tmp_path / "all"), "--frame-skip", "25"]) == 0
    assert [FrameSequence(tmp_path / "all" / d.name).frame_ids for d in find_sequences(src)] == [
        [950, 975],
        [3175, 3200],
    ]


def write_tum_fixture(src, out, ids: list[int]) -> dict[int, float]:
    """A TUM RGB-D folder from real frames of the ScanNet export: rgb.txt / depth.txt (depth 4 ms after
    its color frame, PNG in 1/5000 m), groundtruth.txt at each depth time plus poses in between.
    Frame ``ids[2]`` gets no depth image and ``ids[4]`` no ground truth near it. Returns depth times."""
    (out / "rgb").mkdir(parents=True)
    (out / "depth").mkdir()
    lines = tum_lines(src / "gt_pose.txt")
    rgb, depth, gt, t_depth = ["# color images"], ["# depth maps"], ["# ground truth trajectory"], {}
    for n, k in enumerate(ids):
        t = 1305031100.0 + k / 30.0
        os.symlink(src / "rgb" / f"frame_{k:05d}.jpg", out / "rgb" / f"{t:.6f}.jpg")
        rgb.append(f"{t:.6f} rgb/{t:.6f}.jpg")
        if n == 2:
            continue
        td = t + 0.004
        mm = np.asarray(Image.open(src / "depth" / f"frame_{k:05d}.png")).astype(np.uint32)
        Image.fromarray((mm * 5).clip(0, 65535).astype(np.uint16)).save(out / "depth" / f"{td:.6f}.png")
        depth.append(f"{td:.6f} depth/{td:.6f}.png")
        t_depth[k] = td
        if n != 4:
            gt.append(f"{td:.6f} " + " ".join(f"{v:.9f}" for v in lines[k][1:]))
            gt.append(f"{td + 0.01:.6f} " + " ".join(f"{v:.9f}" for v in lines[k][1:]))
    (out / "rgb.txt").write_text("\n".join(rgb) + "\n")
    (out / "depth.txt").write_text("\n".join(depth) + "\n")
    (out / "groundtruth.txt").write_text("\n".join(gt) + "\n")
    return t_depth


def test_tum_layout_built_from_real_frames(shared_data, tmp_path):
    src = shared_data / "scannet_scene0378_00"
    ids = [0, 5, 10, 15, 20, 25]
    tum = tmp_path / "rgbd_dataset_freiburg1_desk"
    write_tum_fixture(src, tum, ids)
    assert load_layout(tum).kind == "tum"
    # Without an intrinsics file the layout uses TUM's registered-depth intrinsics.
    np.testing.assert_array_equal(load_layout(tum).intrinsics, TUM_K)
    np.savetxt(tum / "intrinsics.txt", np.loadtxt(src / "intrinsic.txt")[:3, :3])
    info = export_sequence(tum, tmp_path / "tum")
    assert info["frames"] == [0, 1, 3, 5]  # positions in rgb.txt
    reasons = {s["frame"]: s["reason"] for s in info["skipped"]}
    assert "no depth image within 20 ms" in reasons[2] and "no ground-truth pose" in reasons[4]
    ref = export_sequence(src, tmp_path / "ref", frame_skip=5, max_frames=6)
    assert ref["frames"] == ids
    got, want = FrameSequence(tmp_path / "tum"), FrameSequence(tmp_path / "ref")
    np.testing.assert_allclose(got.intrinsics, want.intrinsics)
    frames = []
    for pos in got.frame_ids:
        f, r = got.read(pos), want.read(ids[pos])
        np.testing.assert_array_equal(f.depth_mm, r.depth_mm)  # 1/5000 m back to millimetres, exactly
        np.testing.assert_array_equal(f.color, r.color)
        np.testing.assert_allclose(f.cam_to_world, r.cam_to_world, atol=1e-8)
        frames.append(f)
    check_poses(frames, step_err=0.025, inverted_err=0.2)  # frames 0, 5, 15, 25 (README: 30 mm, 30 apart)


def test_tum_layout_errors_name_the_file(tmp_path):
    (tmp_path / "rgb.txt").write_text("1.0 rgb/1.png\n")
    (tmp_path / "depth.txt").write_text("1.0 depth/1.png\n")
    (tmp_path / "groundtruth.txt").write_text("1.0 0 0 0 0 0 0\n")
    with pytest.raises(SequenceError, match="groundtruth.txt: line 1: expected 8"):
        export_sequence(tmp_path, tmp_path / "out")
    (tmp_path / "groundtruth.txt").write_text("1.0 0 0 0 0 0 0 0\n")
    with pytest.raises(SequenceError, match="groundtruth.txt: line 1: .*zero quaternion"):
        export_sequence(tmp_path, tmp_path / "out")
    (tmp_path / "rgb.txt").write_text("1.0\n")
    with pytest.raises(SequenceError, match="rgb.txt: line 1"):
        export_sequence(tmp_path, tmp_path / "out")
