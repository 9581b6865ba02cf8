"""ScanNet: .sens export against independent references, skipping without decoding, truncation,
labeled meshes (PLY, aggregation + tsv), the real npy scans, data-efficient splits."""

from __future__ import annotations

import io
import json
import zlib

import numpy as np
import pytest
from PIL import Image
from plyfile import PlyData, PlyElement
from scipy.spatial.transform import Rotation

from data_prep import scannet as SN
from pixvox.io.clouds import CloudIndex
from pixvox.io.frames import FrameSequence, is_complete_scene
from tests.data_prep.sens_writer import write_sens

# NYU40 → ScanNet-20 as listed in ../shared/data/README.md (written out independently of the module).
README_MAP = {
    1: 0,
    2: 1,
    3: 2,
    4: 3,
    5: 4,
    6: 5,
    7: 6,
    8: 7,
    9: 8,
    10: 9,
    11: 10,
    12: 11,
    14: 12,
    16: 13,
    24: 14,
    28: 15,
    33: 16,
    34: 17,
    36: 18,
    39: 19,
}

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


def test_sens_export_round_trip(tmp_path, seed):
    rng = np.random.default_rng(seed)
    path, depths, poses = make_scan(tmp_path, rng)
    info = SN.export_sens(path, tmp_path / "out", frame_skip=3)
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
    SN.export_sens(path, tmp_path / "a", frame_skip=1, jpeg_draft=True)
    SN.export_sens(path, tmp_path / "b", frame_skip=1, jpeg_draft=False)
    a = FrameSequence(tmp_path / "a").read(1).color.astype(float)
    b = FrameSequence(tmp_path / "b").read(1).color.astype(float)
    assert np.abs(a - b)[2:-2, 2:-2].mean() < 3


def test_skipped_frames_are_not_decoded(tmp_path, seed):
    rng = np.random.default_rng(seed)
    path, depths, _ = make_scan(tmp_path, rng, n=10, bad_pose=(), corrupt_skipped=True)
    info = SN.export_sens(path, tmp_path / "out", frame_skip=3)
    assert info["frames"] == [0, 3, 6, 9]
    with pytest.raises(SN.SensFormatError, match="frame 1"):
        SN.export_sens(path, tmp_path / "all", frame_skip=1)
    assert not is_complete_scene(tmp_path / "all")


@pytest.mark.parametrize("cut", [10, 300, -500])
def test_truncated_sens(tmp_path, seed, cut):
    rng = np.random.default_rng(seed)
    path, _, _ = make_scan(tmp_path, rng, n=4, bad_pose=())
    data = path.read_bytes()
    path.write_bytes(data[:cut])
    with pytest.raises(SN.SensFormatError, match="scene0001_00.sens.*truncated"):
        SN.export_sens(path, tmp_path / "out", frame_skip=1)
    assert not is_complete_scene(tmp_path / "out")


def test_offset_color_camera_is_reprojected(tmp_path, seed):
    # Color camera 6 cm to the side, rotated 2 degrees; a fronto-parallel wall at 2 m.
    rng = np.random.default_rng(seed)
    E = np.eye(4)
    E[:3, :3] = Rotation.from_euler("y", 2, degrees=True).as_matrix()
    E[:3, 3] = [0.06, 0.0, 0.0]
    path, _, _ = make_scan(tmp_path, rng, n=1, bad_pose=(), ext_color=E, depth_const=2000)
    SN.export_sens(path, tmp_path / "out", frame_skip=1)
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


def write_ply(path, **props):
    dtype = [(k, v.dtype.str) for k, v in props.items()]
    arr = np.empty(len(next(iter(props.values()))), dtype=dtype)
    for k, v in props.items():
        arr[k] = v
    PlyData([PlyElement.describe(arr, "vertex")]).write(str(path))


def test_labeled_mesh_to_cloud(tmp_path, seed):
    rng = np.random.default_rng(seed)
    scene = tmp_path / "scene0002_01"
    scene.mkdir()
    n = 500
    xyz = rng.normal(size=(n, 3)).astype(np.float32)
    rgb = rng.integers(0, 256, (n, 3)).astype(np.uint8)
    nyu = rng.integers(0, 41, n).astype(np.uint16)
    write_ply(
        scene / "scene0002_01_vh_clean_2.ply",
        x=xyz[:, 0],
        y=xyz[:, 1],
        z=xyz[:, 2],
        red=rgb[:, 0],
        green=rgb[:, 1],
        blue=rgb[:, 2],
    )
    write_ply(scene / "scene0002_01_vh_clean_2.labels.ply", x=xyz[:, 0], y=xyz[:, 1], z=xyz[:, 2], label=nyu)
    cloud = SN.scan_to_cloud(scene)
    np.testing.assert_array_equal(cloud.xyz, xyz)
    np.testing.assert_array_equal(cloud.rgb, rgb)
    np.testing.assert_array_equal(cloud.labels, [README_MAP.get(int(i), -1) for i in nyu])
    # The aggregation route: segments grouped into objects with raw categories, mapped through the tsv.
    seg = rng.integers(0, 20, n)
    (scene / "scene0002_01_vh_clean_2.0.010000.segs.json").write_text(
        json.dumps({"segIndices": seg.tolist()})
    )
    groups = [
        {"label": "office chair", "segments": [0, 1, 2]},
        {"label": "wall", "segments": [5, 7]},
        {"label": "lamp", "segments": [9]},
    ]
    (scene / "scene0002_01.aggregation.json").write_text(json.dumps({"segGroups": groups}))
    tsv = tmp_path / "labels.tsv"
    tsv.write_text(
        "id\traw_category\tcategory\tcount\tnyu40id\teigen13id\tnyuClass\tnyu40class\n"
        "1\twall\twall\t1\t1\t12\twall\twall\n2\toffice chair\tchair\t1\t5\t4\tchair\tchair\n"
        "3\tlamp\tlamp\t1\t35\t7\tlamp\tlamp\n"
        + "".join(f"{9 + i}\tc{i}\tc{i}\t1\t{i}\t1\tc{i}\tc{i}\n" for i in README_MAP)
    )
    raw_to_nyu, names = SN.load_label_tsv(tsv)
    agg = SN.scan_to_cloud(scene, raw_to_nyu, label_source="aggregation")
    expected = np.full(n, -1)
    expected[np.isin(seg, [0, 1, 2])] = 4  # chair
    expected[np.isin(seg, [5, 7])] = 0  # wall
    np.testing.assert_array_equal(agg.labels, expected)  # lamp (NYU40 35) is not a benchmark class


def test_ply_errors_name_the_file(tmp_path):
    scene = tmp_path / "scene0003_00"
    scene.mkdir()
    write_ply(
        scene / "scene0003_00_vh_clean_2.ply", x=np.zeros(3, "f4"), y=np.zeros(3, "f4"), z=np.zeros(3, "f4")
    )
    with pytest.raises(SN.ScanNetFormatError, match="vh_clean_2.ply.*red"):
        SN.scan_to_cloud(scene)
    (scene / "scene0003_00_vh_clean_2.ply").write_bytes(b"ply\nformat garbage\n")
    with pytest.raises(SN.ScanNetFormatError, match="vh_clean_2.ply"):
        SN.scan_to_cloud(scene)


def test_real_scannet_arrays(shared_data, tmp_path):
    src = shared_data / "scannet_scene0000"
    assert SN.main(["npy-clouds", "--src", str(src), "--out", str(tmp_path / "clouds")]) == 0
    index = CloudIndex.load(tmp_path / "clouds")
    assert index.names() == ["scene0000_00", "scene0000_01"] and index.class_names == list(
        SN.SCANNET20_CLASS_NAMES
    )
    for name in index.names():
        cloud = index.load_scene(name)
        vert = np.load(src / f"{name}_vert_all.npy")
        sem = np.load(src / f"{name}_sem_label_all.npy")
        np.testing.assert_array_equal(cloud.xyz, vert[:, :3])
        np.testing.assert_array_equal(cloud.labels, [README_MAP.get(int(i), -1) for i in sem])
        assert 0.6 < (cloud.labels >= 0).mean() < 0.9  # README: about 75% in the 20 classes
        # Walls and floors of a real room: floor points are low, there are many of both.
        z = cloud.xyz[:, 2]
        assert np.median(z[cloud.labels == 1]) < np.median(z[cloud.labels == 0])
        assert cloud.rgb.dtype == np.uint8 and cloud.rgb.max() > 100


def test_splits_and_data_efficient_subsets(shared_data, tmp_path, seed):
    lists = tmp_path / "lists"
    lists.mkdir()
    train = [f"scene{i:04d}_00" for i in range(200)] + ["scene0000_01"]
    (lists / "scannetv2_train.txt").write_text("\n".join(train) + "\n")
    (lists / "scannetv2_val.txt").write_text("scene0500_00\nscene0501_00\n")
    SN.main(
        ["npy-clouds", "--src", str(shared_data / "scannet_scene0000"), "--out", str(tmp_path / "clouds")]
    )
    s1 = SN.write_splits(lists, tmp_path / "a", seed, tmp_path / "clouds")
    SN.write_splits(lists, tmp_path / "b", seed, tmp_path / "clouds")
    SN.write_splits(lists, tmp_path / "c", seed + 1)
    assert s1["train"] == 201 and s1["val"] == 2 and "test" not in s1
    sizes = {p: len((tmp_path / "a" / f"train_{p}pct.txt").read_text().split()) for p in (1, 5, 10, 20)}
    assert sizes == {1: 2, 5: 10, 10: 20, 20: 40}
    prev: set[str] = set()
    for p in (1, 5, 10, 20):
        cur = set((tmp_path / "a" / f"train_{p}pct.txt").read_text().split())
        assert prev <= cur <= set(train)
        assert (tmp_path / "a" / f"train_{p}pct.txt").read_text() == (
            tmp_path / "b" / f"train_{p}pct.txt"
        ).read_text()
        prev = cur
    assert (tmp_path / "a" / "train_20pct.txt").read_text() != (
        tmp_path / "c" / "train_20pct.txt"
    ).read_text()
    pts = json.loads((tmp_path / "a" / "limited_points.json").read_text())
    assert pts["counts"] == [20, 50, 100, 200] and sorted(pts["scenes"]) == ["scene0000_00", "scene0000_01"]
    assert s1["limited_points_missing"][:2] == ["scene0001_00", "scene0002_00"]
    for name, idx in pts["scenes"].items():
        labels = CloudIndex.load(tmp_path / "clouds").load_scene(name).labels
        idx = np.asarray(idx)
        assert len(idx) == 200 == len(set(idx.tolist())) and (labels[idx] >= 0).all()
    assert json.loads((tmp_path / "b" / "limited_points.json").read_text()) == pts
