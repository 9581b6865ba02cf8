"""SUN RGB-D folders written by the test: depth bit rotation, the tilt as pose checked against the
SUN RGB-D toolbox's own point formula, real SUN frame, skips."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
from PIL import Image
from scipy.spatial.transform import Rotation

from pixvox.io.depth import mm_to_sunrgbd, sunrgbd_to_mm
from pixvox.io.frames import FrameSequence
from pixvox.io.images import read_depth_png
from pixvox.prep import sunrgbd


def make_frame(folder, rng, E):
    for sub in ("image", "depth", "extrinsics"):
        (folder / sub).mkdir(parents=True)
    rgb = rng.integers(0, 256, (30, 40, 3)).astype(np.uint8)
    mm = rng.integers(0, 9000, (30, 40)).astype(np.uint16)
    Image.fromarray(rgb).save(folder / "image" / f"{folder.name}.jpg")
    Image.fromarray(mm_to_sunrgbd(mm)).save(folder / "depth" / f"{folder.name}.png")
    K = np.array([[35.0, 0, 19.2], [0, 36.0, 14.7], [0, 0, 1]])
    (folder / "intrinsics.txt").write_text("\n".join(" ".join(f"{x:.6f}" for x in r) for r in K) + "\n")
    (folder / "extrinsics" / "20140101000000.txt").write_text("1 0 0 0\n0 1 0 0\n0 0 1 0\n")  # older, ignored
    (folder / "extrinsics" / "20150101000000.txt").write_text(
        "\n".join(" ".join(f"{x:.9f}" for x in r) + " 0" for r in E) + "\n"
    )
    return mm, K


def test_tilt_pose_matches_toolbox_points(tmp_path, seed):
    rng = np.random.default_rng(seed)
    E = Rotation.from_euler("xz", rng.uniform(-0.4, 0.4, 2)).as_matrix()
    d = tmp_path / "SUNRGBD" / "kv2" / "align_kv2" / "000123"
    mm, K = make_frame(d, rng, E)
    assert sunrgbd.main(["--root", str(tmp_path / "SUNRGBD"), "--out", str(tmp_path / "out")]) == 0
    seq = FrameSequence(tmp_path / "out" / "kv2_align_kv2_000123")
    f = seq.read(0)
    np.testing.assert_array_equal(f.depth_mm, mm)
    np.testing.assert_allclose(f.intrinsics, K, atol=1e-6)
    # SUN RGB-D toolbox (read3dPoints.m + readframe): points3d = Rtilt * [x3, z3, -y3] with
    # Rtilt = P * E * P', P = [1 0 0; 0 0 1; 0 -1 0], E read from the last extrinsics file.
    v, u = np.nonzero(mm)
    z3 = mm[v, u] / 1000.0
    x3 = (u - K[0, 2]) * z3 / K[0, 0]
    y3 = (v - K[1, 2]) * z3 / K[1, 1]
    P = np.array([[1, 0, 0], [0, 0, 1], [0, -1, 0]])
    toolbox = (P @ E @ P.T @ np.stack([x3, z3, -y3])).T
    ours_cam = np.stack(
        [
            (u - f.intrinsics[0, 2]) * z3 / f.intrinsics[0, 0],
            (v - f.intrinsics[1, 2]) * z3 / f.intrinsics[1, 1],
            z3,
        ],
        1,
    )
    ours = ours_cam @ f.cam_to_world[:3, :3].T + f.cam_to_world[:3, 3]
    np.testing.assert_allclose(ours, toolbox, atol=1e-6)


def test_missing_extrinsics_is_a_counted_skip(tmp_path, seed):
    rng = np.random.default_rng(seed)
    make_frame(tmp_path / "root" / "a", rng, np.eye(3))
    make_frame(tmp_path / "root" / "b", rng, np.eye(3))
    for p in (tmp_path / "root" / "b" / "extrinsics").iterdir():
        p.unlink()
    with pytest.raises(sunrgbd.SunRGBDError, match="extrinsics"):
        sunrgbd.read_frame(tmp_path / "root" / "b")
    assert sunrgbd.main(["--root", str(tmp_path / "root"), "--out", str(tmp_path / "out")]) == 0
    summary = json.loads((tmp_path / "out" / "sunrgbd_summary.json").read_text())
    assert (
        summary["exported"] == 1
        and len(summary["skipped"]) == 1
        and "extrinsics" in summary["skipped"][0]["reason"]
    )


def test_real_sun_frame(shared_data, tmp_path):
    d = tmp_path / "root" / "frame"
    for sub in ("image", "depth", "extrinsics"):
        (d / sub).mkdir(parents=True)
    os.symlink(shared_data / "single_frames" / "SUN_color.jpg", d / "image" / "f.jpg")
    os.symlink(shared_data / "single_frames" / "SUN_depth.png", d / "depth" / "f.png")
    (d / "intrinsics.txt").write_text("529.5 0 365\n0 529.5 265\n0 0 1\n")
    (d / "extrinsics" / "e.txt").write_text("1 0 0 0\n0 1 0 0\n0 0 1 0\n")
    assert sunrgbd.export_frame(d, tmp_path / "out")
    f = FrameSequence(tmp_path / "out").read(0)
    np.testing.assert_array_equal(f.depth_mm, sunrgbd_to_mm(read_depth_png(d / "depth" / "f.png")))
    # Identity tilt: world z (up) is camera -y, world y is the viewing direction.
    np.testing.assert_array_equal(f.cam_to_world[:3, :3], [[1, 0, 0], [0, 0, 1], [0, -1, 0]])
    assert 0.5 < np.median(f.depth_mm[f.depth_mm > 0]) / 1000 < 6
