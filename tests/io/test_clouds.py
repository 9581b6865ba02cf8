"""Labeled clouds and their index: exact round trips and validation."""

from __future__ import annotations

import json

import numpy as np
import pytest

from pixvox.io.clouds import CloudFormatError, CloudIndex, LabeledCloud, load_cloud, write_cloud


def random_cloud(rng: np.random.Generator, n: int, num_classes: int) -> LabeledCloud:
    return LabeledCloud(
        xyz=rng.normal(size=(n, 3)).astype(np.float32),
        rgb=rng.integers(0, 256, (n, 3)).astype(np.uint8),
        labels=rng.integers(-1, num_classes, n).astype(np.int32),
    )


def test_index_round_trip(tmp_path, seed):
    rng = np.random.default_rng(seed)
    names = ["wall", "floor", "chair"]
    idx = CloudIndex.open_or_create(tmp_path / "c", names)
    clouds = {f"s{i}": random_cloud(rng, int(rng.integers(0, 300)), 3) for i in range(3)}
    for name, c in clouds.items():
        idx.add(name, c)
    idx.write()
    d = json.loads((tmp_path / "c" / "index.json").read_text())
    assert d["format"] == "pixvox.labeled_clouds" and d["class_names"] == names and d["ignore_index"] == -1
    back = CloudIndex.load(tmp_path / "c")
    assert back.names() == sorted(clouds)
    for name, c in clouds.items():
        got = back.load_scene(name)
        for k in ("xyz", "rgb", "labels"):
            np.testing.assert_array_equal(getattr(got, k), getattr(c, k))
            assert getattr(got, k).dtype == getattr(c, k).dtype
        back.verify(back.position(name))
    with pytest.raises(CloudFormatError, match="class_names"):
        CloudIndex.open_or_create(tmp_path / "c", ["a"])


def test_validation(tmp_path, seed):
    rng = np.random.default_rng(seed)
    c = random_cloud(rng, 10, 3)
    with pytest.raises(CloudFormatError, match="labels span"):
        write_cloud(tmp_path / "a.npz", LabeledCloud(c.xyz, c.rgb, c.labels + 5), num_classes=3)
    with pytest.raises(CloudFormatError, match="xyz"):
        write_cloud(tmp_path / "a.npz", LabeledCloud(c.xyz.astype(np.float64), c.rgb, c.labels))
    bad = c.xyz.copy()
    bad[3, 1] = np.nan
    with pytest.raises(CloudFormatError, match="NaN"):
        write_cloud(tmp_path / "a.npz", LabeledCloud(bad, c.rgb, c.labels))
    with pytest.raises(CloudFormatError, match="rows"):
        write_cloud(tmp_path / "a.npz", LabeledCloud(c.xyz, c.rgb[:5], c.labels))
    assert not (tmp_path / "a.npz").exists()
    np.savez(tmp_path / "m.npz", xyz=c.xyz, rgb=c.rgb)
    with pytest.raises(CloudFormatError, match="m.npz.*labels"):
        load_cloud(tmp_path / "m.npz")
    (tmp_path / "x.npz").write_bytes(b"PK\x03\x04broken")
    with pytest.raises(CloudFormatError, match="x.npz"):
        load_cloud(tmp_path / "x.npz")
