"""ScanNet .sens export against independent references: registration, skipping without decoding,
truncation, invalid poses."""

from __future__ import annotations

import io
import zlib

import numpy as np
import pytest
from PIL import Image
from scipy.spatial.transform import Rotation

from pixvox.io.frames import FrameSequence, is_complete_scene
from pixvox.prep.scannet.frames import export_sens
from pixvox.prep.scannet.sens import SensFormatError
from tests.prep.scannet.sens_writer import write_sens

DW, DH = 80, 60  # depth size
CW, CH = 160, 120  # color size (2x, like ScanNet's 1296x968 vs 640x480)
K_D = np.array([[70.0, 0, 39.5], [0, 70.0, 29.5], [0, 0, 1]])
K_C = np.array([[141.0, 0, 80.3], [0, 140.0, 59.1], [0, 0, 1]])


def pattern(u, v):
    """Smooth color as a function of continuous color-pixel coordinates."""
    return np.stack(
        [127 + 100 * np.sin(u / 9.0), 127 + 100 * np.cos(v / 7.0), 127 + 60 * np.sin((u + v) / 13.0)], -1
    )


def color_image() -> np.ndarray:
    v, u = np.mgrid[0:CH, 0:CW].astype(np.float64)
    return np.round(pattern(u, v)).astype(np.uint8)


def encode(rgb, fmt):
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, format=fmt, **({"quality": 97} if fmt == "JPEG" else {}))
    return buf.getvalue()


def make_scan(
    tmp_path,
    rng,
    n=13,
    bad_pose=(6,),
    color_fmt="PNG",
    ext_color=None,
    corrupt_skipped=False,
    depth_const=None,
):
    depths, colors, poses = [], [], []
    img = encode(color_image(), color_fmt)
    for i in range(n):
        d = (
            rng.integers(0, 6000, (DH, DW)).astype("<u2")
            if depth_const is None
            else np.full((DH, DW), depth_const, "<u2")
        )
        d[rng.random((DH, DW)) < 0.1] = 0
        depths.append(d)
        T = np.eye(4)
        T[:3, :3] = Rotation.random(random_state=int(rng.integers(2**31))).as_matrix()
        T[:3, 3] = rng.uniform(-3, 3, 3)
        if i in bad_pose:
            T[:] = -np.inf
        poses.append(T.astype(np.float32).astype(np.float64))
        colors.append(img)
    payload = [zlib.compress(d.tobytes()) for d in depths]
    if corrupt_skipped:
        payload = [p if i % 3 == 0 else b"not zlib" * 5 for i, p in enumerate(payload)]
        colors = [c if i % 3 == 0 else b"not an image" for i, c in enumerate(colors)]
    path = tmp_path / "scene0001_00.sens"
    write_sens(
        path,
        colors,
        payload,
        poses,
        K_color=K_C,
        K_depth=K_D,
        color_size=(CW, CH),
        depth_size=(DW, DH),
        ext_color=ext_color,
        color_compression=1 if color_fmt == "PNG" else 2,
    )
    return path, depths, poses


def test_sens_export_round_trip(tmp_path, seed, caplog):
    rng = np.random.default_rng(seed)
    path, depths, poses = make_scan(tmp_path, rng)
    with caplog.at_level("WARNING", logger="pixvox.prep.scannet"):
        info = export_sens(path, tmp_path / "out", frame_skip=3)
    assert f"skipped frame 6: invalid pose: {path}" in caplog.text  # a logged skip naming the file
    assert info["frames"] == [0, 3, 9, 12] and info["read_frames"] == 5
    assert info["skipped"][0]["frame"] == 6 and "pose" in info["skipped"][0]["reason"]
    seq = FrameSequence(tmp_path / "out")
    np.testing.assert_array_equal(seq.intrinsics, K_D)
    v, u = np.mgrid[0:DH, 0:DW].astype(np.float64)
    # Independent reference: the color pixel each depth pixel sees through the two intrinsics.
    uc = K_C[0, 0] / K_D[0, 0] * (u - K_D[0, 2]) + K_C[0, 2]
    vc = K_C[1, 1] / K_D[1, 1] * (v - K_D[1, 2]) + K_C[1, 2]
    expected = pattern(uc, vc)
    for i in seq.frame_ids:
        f = seq.read(i)
        np.testing.assert_array_equal(f.depth_mm, depths[i])
        np.testing.assert_array_equal(f.cam_to_world, poses[i])
        inner = (slice(2, -2), slice(2, -2))
        assert np.abs(f.color[inner].astype(float) - expected[inner]).mean() < 2.5


def test_jpeg_draft_decoding_registers_the_same(tmp_path, seed):
    rng = np.random.default_rng(seed)
    path, _, _ = make_scan(tmp_path, rng, n=2, bad_pose=(), color_fmt="JPEG")
    export_sens(path, tmp_path / "a", frame_skip=1, jpeg_draft=True)
    export_sens(path, tmp_path / "b", frame_skip=1, jpeg_draft=False)
    a = FrameSequence(tmp_path / "a").read(1).color.astype(float)
    b = FrameSequence(tmp_path / "b").read(1).color.astype(float)
    assert np.abs(a - b)[2:-2, 2:-2].mean() < 3


def test_skipped_frames_are_not_decoded(tmp_path, seed):
    rng = np.random.default_rng(seed)
    path, depths, _ = make_scan(tmp_path, rng, n=10, bad_pose=(), corrupt_skipped=True)
    info = export_sens(path, tmp_path / "out", frame_skip=3)
    assert info["frames"] == [0, 3, 6, 9]
    with pytest.raises(SensFormatError, match="frame 1"):
        export_sens(path, tmp_path / "all", frame_skip=1)
    assert not is_complete_scene(tmp_path / "all")


@pytest.mark.parametrize("cut", [10, 300, -500])
def test_truncated_sens(tmp_path, seed, cut):
    rng = np.random.default_rng(seed)
    path, _, _ = make_scan(tmp_path, rng, n=4, bad_pose=())
    data = path.read_bytes()
    path.write_bytes(data[:cut])
    with pytest.raises(SensFormatError, match="scene0001_00.sens.*truncated"):
        export_sens(path, tmp_path / "out", frame_skip=1)
    assert not is_complete_scene(tmp_path / "out")


def test_offset_color_camera_is_reprojected(tmp_path, seed):
    # Color camera 6 cm to the side, rotated 2 degrees; a fronto-parallel wall at 2 m.
    rng = np.random.default_rng(seed)
    E = np.eye(4)
    E[:3, :3] = Rotation.from_euler("y", 2, degrees=True).as_matrix()
    E[:3, 3] = [0.06, 0.0, 0.0]
    path, _, _ = make_scan(tmp_path, rng, n=1, bad_pose=(), ext_color=E, depth_const=2000)
    export_sens(path, tmp_path / "out", frame_skip=1)
    f = FrameSequence(tmp_path / "out").read(0)
    v, u = np.mgrid[0:DH, 0:DW].astype(np.float64)
    z = np.where(f.depth_mm > 0, f.depth_mm / 1000.0, 10.0)
    X = np.stack([(u - K_D[0, 2]) * z / K_D[0, 0], (v - K_D[1, 2]) * z / K_D[1, 1], z, np.ones_like(z)], -1)
    Xc = X @ np.linalg.inv(E).T  # extrinsics are camera-to-rig: depth → rig → color
    uc = K_C[0, 0] * Xc[..., 0] / Xc[..., 2] + K_C[0, 2]
    vc = K_C[1, 1] * Xc[..., 1] / Xc[..., 2] + K_C[1, 2]
    ok = (uc > 1) & (uc < CW - 2) & (vc > 1) & (vc < CH - 2) & (f.depth_mm > 0)
    err = np.abs(f.color.astype(float) - pattern(uc, vc))[ok].mean()
    naive = np.abs(
        f.color.astype(float)
        - pattern(
            K_C[0, 0] / K_D[0, 0] * (u - K_D[0, 2]) + K_C[0, 2],
            K_C[1, 1] / K_D[1, 1] * (v - K_D[1, 2]) + K_C[1, 2],
        )
    )[ok].mean()
    assert err < 3 < naive
