"""Scene splits by glob pattern or list file, on a labeled-cloud index and on Pointcept's layout."""

from __future__ import annotations

import numpy as np
import pytest

from pixvox.config.finetune import SceneSplitConfig
from pixvox.datasets.splits import resolve_split
from pixvox.io.clouds import CloudFormatError, LabeledCloud
from pixvox.prep.pointcept import PointceptScenes


def test_splits_by_pattern_and_list_file(tmp_path, make_index):
    cloud = LabeledCloud(np.zeros((1, 3), np.float32), np.zeros((1, 3), np.uint8), np.zeros(1, np.int32))
    names = ["Area_1_office_1", "Area_2_hallway_3", "Area_5_office_1", "Area_5_storage_2", "Area_6_lobby_1"]
    index = make_index(tmp_path, dict.fromkeys(names, cloud), ["x"])
    train = resolve_split(index, SceneSplitConfig(include=["Area_*"], exclude=["Area_5_*"]))
    val = resolve_split(index, SceneSplitConfig(include=["Area_5_*"]))
    assert train == ["Area_1_office_1", "Area_2_hallway_3", "Area_6_lobby_1"]
    assert val == ["Area_5_office_1", "Area_5_storage_2"]
    (tmp_path / "val.txt").write_text("Area_6_lobby_1\n# comment\n\nArea_1_office_1\n")
    listed = resolve_split(index, SceneSplitConfig(list_file="val.txt"))
    assert listed == ["Area_1_office_1", "Area_6_lobby_1"]
    (tmp_path / "bad.txt").write_text("Area_9_nowhere\n")
    with pytest.raises(CloudFormatError, match="Area_9_nowhere"):
        resolve_split(index, SceneSplitConfig(list_file=str(tmp_path / "bad.txt")))
    with pytest.raises(FileNotFoundError, match="missing.txt"):
        resolve_split(index, SceneSplitConfig(list_file="missing.txt"))


def test_splits_on_pointcept_s3dis_areas(tmp_path):
    # Pointcept's S3DIS layout Area_N/<room>/: the rooms are named Area_N_<room>, so the S3DIS
    # recipe's patterns (train on Area_* except Area_5_*) select them as they do prepared clouds.
    for area, room in [("Area_1", "office_1"), ("Area_5", "office_1"), ("Area_5", "hallway_2")]:
        d = tmp_path / area / room
        d.mkdir(parents=True)
        np.save(d / "coord.npy", np.zeros((2, 3), np.float32))
        np.save(d / "color.npy", np.zeros((2, 3), np.uint8))
        np.save(d / "segment.npy", np.zeros(2, np.int64))
    scenes = PointceptScenes(tmp_path)
    assert scenes.names() == ["Area_1_office_1", "Area_5_hallway_2", "Area_5_office_1"]
    assert resolve_split(scenes, SceneSplitConfig(include=["Area_*"], exclude=["Area_5_*"])) == [
        "Area_1_office_1"
    ]
    assert scenes.label_field == "segment" and scenes.class_names[0] == "ceiling"
