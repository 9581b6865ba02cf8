"""The data-efficient files that ScanNet `splits` writes are the ones fine-tuning trains on.

Regression test for issue 13: the ``limited_points.json`` written by ``splits`` was rejected by the
fine-tuning reader, all 200 indices would have been used at every budget, and ``train_5pct.txt`` and
``scene_fraction: 0.05`` with the same seed picked different scenes.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from data_prep import scannet as SN
from pixvox.config import FinetuneConfig, load_config
from pixvox.datasets.segmentation import IGNORE, select_scenes
from pixvox.finetune.run import make_datasets
from pixvox.io.clouds import CloudIndex

REPO = Path(__file__).resolve().parents[2]


def test_splits_output_drives_the_limited_points_configs(shared_data, tmp_path, seed):
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
            [
                f"data.root={clouds}",
                f"data.train.list_file={splits / 'scannetv2_train.txt'}",
                f"data.val.list_file={splits / 'scannetv2_val.txt'}",
                f"data.subset.points_file={splits / 'limited_points.json'}",
                f"data.subset.seed={seed}",
            ],
        )
        train_ds, _ = make_datasets(cfg, index)
        assert sorted(train_ds.scenes) == ["scene0000_00", "scene0000_01"]
        for name in train_ds.scenes:
            labels = train_ds.load_labels(name)
            used = np.flatnonzero(labels != IGNORE)
            assert used.size == budget, (name, budget, used.size)
            assert set(used.tolist()) == set(stored[name][:budget])
        assert train_ds.label_counts().sum() == 2 * budget
    # The scene list of a fraction and the runtime fraction with the same seed are the same scenes.
    for pct in (1, 5, 10, 20):
        listed = (splits / f"train_{pct}pct.txt").read_text().split()
        assert sorted(select_scenes(sorted(set(train)), pct / 100, seed)) == sorted(listed), pct
