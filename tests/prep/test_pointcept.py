"""Pointcept's preprocessed layout, read in place: the real ScanNet rooms (segment20 and segment200), a
fine-tuning job pointed at the folder, and every kind of bad file named in the error."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from pixvox.config import FinetuneConfig, load_config
from pixvox.finetune.run import main, make_datasets
from pixvox.io.clouds import CloudFormatError
from pixvox.prep.ensure import ensure_segmentation_data, open_segmentation_data
from pixvox.prep.pointcept import PointceptScenes, read_pointcept_scene
from pixvox.prep.scannet.benchmark import SCANNET20_CLASS_NAMES, SCANNET200_CLASS_NAMES

from .conftest import REPO

ROOMS = ["scene0011_00", "scene0025_00", "scene0046_02"]


def test_real_rooms_are_read_as_stored(shared_data):
    root = shared_data / "scannet_pointcept"
    scenes = PointceptScenes(root)
    assert scenes.names() == ROOMS and scenes.label_field == "segment20"
    assert scenes.class_names == list(SCANNET20_CLASS_NAMES) and scenes.ignore_index == -1
    cloud = scenes.load_scene("scene0025_00")
    folder = root / "scene0025_00"
    coord, color = np.load(folder / "coord.npy"), np.load(folder / "color.npy")
    assert 170_000 <= cloud.num_points <= 240_000
    np.testing.assert_array_equal(cloud.xyz, coord)
    np.testing.assert_array_equal(cloud.rgb, color)
    np.testing.assert_array_equal(cloud.labels, np.load(folder / "segment20.npy"))
    # A real room: floor points lie below wall points, and most points carry one of the 20 classes.
    z = cloud.xyz[:, 2]
    assert np.median(z[cloud.labels == 1]) < np.median(z[cloud.labels == 0])
    assert 0.6 < (cloud.labels >= 0).mean() <= 1.0
    s200 = PointceptScenes(root, "segment200")
    assert s200.num_classes == 200 and s200.class_names == list(SCANNET200_CLASS_NAMES)
    np.testing.assert_array_equal(s200.load_scene(0).labels, np.load(root / ROOMS[0] / "segment200.npy"))


def test_finetuning_config_reads_the_folder_in_place(shared_data, tmp_path):
    root = shared_data / "scannet_pointcept"
    before = sorted(p.relative_to(root) for p in root.rglob("*"))
    cfg = load_config(
        FinetuneConfig,
        REPO / "configs/finetune/scannet_scene0000.yaml",
        [
            f"data.root={root}",
            "data.scannet_npy=null",
            "data.train.include=[scene0011_00]",
            "data.val.include=[scene0046_02]",
        ],
    )
    assert ensure_segmentation_data(cfg) == root  # nothing to prepare
    scenes = open_segmentation_data(cfg)
    assert isinstance(scenes, PointceptScenes)
    train, val = make_datasets(cfg, scenes)
    assert train.scenes == ["scene0011_00"] and val.scenes == ["scene0046_02"]
    item = val[0]
    assert item["inverse"].shape[0] == scenes.load_scene("scene0046_02").num_points
    summary = main([
        str(REPO / "configs/finetune/scannet_scene0000.yaml"),
        f"data.root={root}", "data.scannet_npy=null", "data.label_field=segment20",
        "data.train.include=[scene0011_00]", "data.val.include=[scene0046_02]", f"experiment.output_root={tmp_path}",
        "data.voxel_size=0.2", "data.crop_size=2.0", "train.max_steps=2", "eval.export_ply=0",
        "eval.confusion_png=false", "logging.wandb=disabled", "logging.progress_bar=false", "--resume", "none",
    ])  # fmt: skip
    assert 0.0 <= summary["miou"] <= 1.0 and summary["val_scenes"] == 1
    metrics = json.loads((tmp_path / "scannet_scene0000" / "eval" / "metrics.json").read_text())
    assert metrics["class_names"] == list(SCANNET20_CLASS_NAMES)
    assert sorted(p.relative_to(root) for p in root.rglob("*")) == before  # read in place, nothing written


def make_scene(folder, n=50, **override):
    folder.mkdir(parents=True, exist_ok=True)
    arrays = {
        "coord": np.random.default_rng(0).normal(size=(n, 3)).astype(np.float32),
        "color": np.full((n, 3), 200, np.uint8),
        "segment20": np.arange(n, dtype=np.int64) % 20 - 1,
    }
    arrays.update(override)
    for name, arr in arrays.items():
        if arr is not None:
            np.save(folder / f"{name}.npy", arr)
    return folder


@pytest.mark.parametrize(
    "override, bad_file, message",
    [
        ({"color": np.zeros((49, 3), np.uint8)}, "color.npy", "one row per point"),
        ({"segment20": np.zeros(51, np.int64)}, "segment20.npy", "50 integer labels"),
        ({"segment20": np.zeros(50, np.float32)}, "segment20.npy", "integer labels"),
        ({"coord": np.zeros((50, 3), np.int32)}, "coord.npy", "float"),
        ({"coord": np.full((50, 3), np.nan, np.float32)}, "coord.npy", "NaN"),
        ({"color": np.full((50, 3), 300.0)}, "color.npy", r"\[0, 255\]"),
        ({"segment20": np.full(50, 25, np.int64)}, "segment20.npy", "labels span"),
        ({"color": None}, "color.npy", "not found"),
        ({"coord": np.array([object()] * 3)}, "coord.npy", "unreadable"),
    ],
)
def test_bad_files_name_the_file(tmp_path, override, bad_file, message):
    folder = make_scene(tmp_path / "scene0001_00", **override)
    with pytest.raises(CloudFormatError, match=rf"scene0001_00/{bad_file}.*{message}"):
        read_pointcept_scene(folder)


def test_good_synthetic_scene_and_layout_rules(tmp_path):
    make_scene(tmp_path / "train" / "scene0001_00", color=np.full((50, 3), 12.6))
    make_scene(tmp_path / "val" / "scene0002_00")
    scenes = PointceptScenes(tmp_path)
    assert scenes.names() == ["scene0001_00", "scene0002_00"]  # Pointcept's split folders are not in the name
    cloud = scenes.load_scene("scene0001_00")
    assert cloud.rgb.dtype == np.uint8 and (cloud.rgb == 13).all()  # float colors rounded
    assert cloud.labels.dtype == np.int32 and cloud.labels.min() == -1
    shutil.copytree(tmp_path / "val" / "scene0002_00", tmp_path / "train" / "scene0002_00")
    with pytest.raises(CloudFormatError, match="two Pointcept scenes named 'scene0002_00'"):
        PointceptScenes(tmp_path)
    with pytest.raises(CloudFormatError, match="no Pointcept scene folders"):
        PointceptScenes(tmp_path / "train" / "scene0001_00")
    with pytest.raises(ValueError, match="label_field='segment40'"):
        PointceptScenes(tmp_path / "val", "segment40")
