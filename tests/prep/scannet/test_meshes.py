"""ScanNet labeled scans → labeled clouds: meshes (PLY, aggregation + tsv), mmdetection3d's arrays (real
data), errors naming the file."""

from __future__ import annotations

import json

import numpy as np
import pytest
from plyfile import PlyData, PlyElement

from pixvox.io.clouds import CloudFormatError, CloudIndex
from pixvox.prep.scannet import cli as SN
from pixvox.prep.scannet.benchmark import SCANNET20_CLASS_NAMES, ScanNetFormatError
from pixvox.prep.scannet.meshes import load_label_tsv, read_scannet_npy, scan_to_cloud
from tests.prep.scannet.readme_map import README_MAP


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
    cloud = scan_to_cloud(scene)
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
    raw_to_nyu, names = load_label_tsv(tsv)
    agg = scan_to_cloud(scene, raw_to_nyu, label_source="aggregation")
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
    with pytest.raises(ScanNetFormatError, match="vh_clean_2.ply.*red"):
        scan_to_cloud(scene)
    (scene / "scene0003_00_vh_clean_2.ply").write_bytes(b"ply\nformat garbage\n")
    with pytest.raises(ScanNetFormatError, match="vh_clean_2.ply"):
        scan_to_cloud(scene)


def test_real_scannet_arrays(shared_data, tmp_path):
    src = shared_data / "scannet_scene0000"
    assert SN.main(["npy-clouds", "--src", str(src), "--out", str(tmp_path / "clouds")]) == 0
    index = CloudIndex.load(tmp_path / "clouds")
    assert index.names() == ["scene0000_00", "scene0000_01"] and index.class_names == list(
        SCANNET20_CLASS_NAMES
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


def test_scannet_npy_reader_maps_nyu40_to_scannet20(shared_data):
    folder = shared_data / "scannet_scene0000"
    cloud = read_scannet_npy(folder, "scene0000_00")
    nyu = np.load(folder / "scene0000_00_sem_label_all.npy").astype(np.int64)
    verts = np.load(folder / "scene0000_00_vert_all.npy")
    assert cloud.num_points == verts.shape[0] and cloud.labels.dtype == np.int32
    np.testing.assert_array_equal(cloud.xyz, verts[:, :3])
    # Every point against the README's table (written out independently in readme_map.py).
    np.testing.assert_array_equal(cloud.labels, [README_MAP.get(int(i), -1) for i in nyu])
    # The real scene holds 15 of the 20 classes (the other 5 are covered by the test below).
    names = {SCANNET20_CLASS_NAMES[c] for c in set(cloud.labels.tolist()) - {-1}}
    assert names == set(README_NAMES.values()) - {
        "chair",
        "bookshelf",
        "picture",
        "shower curtain",
        "bathtub",
    }
    others = ~np.isin(nyu, [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 14, 16, 24, 28, 33, 34, 36, 39])
    assert (cloud.labels[others] == -1).all() and others.any()
    assert 0.6 < (cloud.labels >= 0).mean() < 0.9  # README: about 75% of points are in the 20 classes


#: the README's "map NYU40 -> ScanNet-20" sentence, by name
README_NAMES = {
    1: "wall", 2: "floor", 3: "cabinet", 4: "bed", 5: "chair", 6: "sofa", 7: "table", 8: "door",
    9: "window", 10: "bookshelf", 11: "picture", 12: "counter", 14: "desk", 16: "curtain",
    24: "refrigerator", 28: "shower curtain", 33: "toilet", 34: "sink", 36: "bathtub", 39: "otherfurniture",
}  # fmt: skip


def test_scannet_npy_reader_maps_every_nyu40_id(tmp_path, seed):
    """Every NYU40 id 0..40 (and one beyond) in shuffled order: the 20 benchmark classes by name and
    class index, everything else ignored."""
    rng = np.random.default_rng(seed)
    nyu = rng.permutation(np.repeat(np.arange(42, dtype=np.uint32), 3))
    np.save(tmp_path / "s_vert_all.npy", rng.random((nyu.size, 6)).astype(np.float32))
    np.save(tmp_path / "s_sem_label_all.npy", nyu)
    labels = read_scannet_npy(tmp_path, "s").labels
    assert len(README_NAMES) == 20 and len(SCANNET20_CLASS_NAMES) == 20
    for nyu_id in range(42):
        got = set(labels[nyu == nyu_id].tolist())
        if nyu_id in README_NAMES:
            assert got == {README_MAP[nyu_id]}, nyu_id
            assert SCANNET20_CLASS_NAMES[README_MAP[nyu_id]] == README_NAMES[nyu_id]
        else:
            assert got == {-1}, nyu_id
    assert sorted(set(labels.tolist()) - {-1}) == list(range(20))


def test_scannet_reader_names_a_bad_file(tmp_path):
    np.save(tmp_path / "s_vert_all.npy", np.zeros((5, 6), np.float32))
    np.save(tmp_path / "s_sem_label_all.npy", np.zeros(4, np.uint32))
    with pytest.raises(CloudFormatError, match="s_sem_label_all.npy"):
        read_scannet_npy(tmp_path, "s")
    with pytest.raises(CloudFormatError, match="not found"):
        read_scannet_npy(tmp_path, "missing")
