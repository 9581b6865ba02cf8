"""ScanNet split files: official lists copied, nested seeded scene fractions and point orders, and the
files driving the fine-tuning recipes."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from pixvox.config import FinetuneConfig, load_config
from pixvox.datasets.segmentation import IGNORE
from pixvox.finetune.run import make_datasets
from pixvox.io.clouds import CloudIndex
from pixvox.prep.scannet import cli as SN
from pixvox.prep.scannet.benchmark import select_scenes
from pixvox.prep.scannet.splits import write_splits

REPO = Path(__file__).resolve().parents[3]


def test_splits_and_data_efficient_subsets(shared_data, tmp_path, seed):
    lists = tmp_path / "lists"
    lists.mkdir()
    train = [f"scene{i:04d}_00" for i in range(200)] + ["scene0000_01"]
    (lists / "scannetv2_train.txt").write_text("\n".join(train) + "\n")
    (lists / "scannetv2_val.txt").write_text("scene0500_00\nscene0501_00\n")
    SN.main(
        ["npy-clouds", "--src", str(shared_data / "scannet_scene0000"), "--out", str(tmp_path / "clouds")]
    )
    s1 = write_splits(lists, tmp_path / "a", seed, tmp_path / "clouds")
    write_splits(lists, tmp_path / "b", seed, tmp_path / "clouds")
    write_splits(lists, tmp_path / "c", seed + 1)
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


def test_splits_output_drives_the_data_efficient_configs(shared_data, tmp_path, seed):
    """``splits`` writes what the ScanNet recipes read: at 20 and 200 points per scene exactly that many
    labeled points of each training scene are used, the file's first k; a fraction file lists the
    scenes ``scene_fraction`` draws with the same seed. (Issue 13: the file was rejected, all 200
    points would have been used at every budget, and the two scene choices differed.)"""
    lists = tmp_path / "lists"
    lists.mkdir()
    train = [f"scene{i:04d}_00" for i in range(1, 100)] + ["scene0000_00", "scene0000_01"]
    (lists / "scannetv2_train.txt").write_text("\n".join(train) + "\n")
    (lists / "scannetv2_val.txt").write_text("scene0000_01\n")
    clouds, splits = tmp_path / "scannet" / "clouds", tmp_path / "scannet" / "splits"
    assert SN.main(["npy-clouds", "--src", str(shared_data / "scannet_scene0000"), "--out", str(clouds)]) == 0
    args = ["splits", "--split-dir", str(lists), "--out", str(splits), "--seed", str(seed)]
    assert SN.main([*args, "--clouds", str(clouds)]) == 0
    stored = json.loads((splits / "limited_points.json").read_text())["scenes"]
    index = CloudIndex.load(clouds)
    # Only two of the listed training scenes are prepared: train on those (the list names 101).
    (splits / "scannetv2_train.txt").write_text("scene0000_00\nscene0000_01\n")
    for budget in (20, 200):
        cfg = load_config(
            FinetuneConfig,
            REPO / f"configs/finetune/scannet_points{budget}.yaml",
            [f"data.root={clouds}", f"data.subset.seed={seed}"],
        )
        train_ds, val_ds = make_datasets(cfg, index)
        assert train_ds.scenes == ["scene0000_00", "scene0000_01"] and val_ds.scenes == ["scene0000_01"]
        for name in train_ds.scenes:
            used = np.flatnonzero(train_ds.load_labels(name) != IGNORE)
            assert used.size == budget, (name, budget, used.size)
            assert set(used.tolist()) == set(stored[name][:budget])
            item = train_ds[(train_ds.scenes.index(name), seed)]  # what a training step sees (no crop)
            assert int((item["point_labels"] != IGNORE).sum()) == budget
        assert train_ds.label_counts().sum() == 2 * budget
        # Without the file, the random draw with the same seed picks the same points.
        cfg.data.subset.points_file = None
        drawn, _ = make_datasets(cfg, index)
        for name in train_ds.scenes:
            np.testing.assert_array_equal(drawn.load_labels(name), train_ds.load_labels(name))
    for pct in (1, 5, 10, 20):
        listed = (splits / f"train_{pct}pct.txt").read_text().split()
        assert sorted(select_scenes(train, pct / 100, seed)) == listed, pct
