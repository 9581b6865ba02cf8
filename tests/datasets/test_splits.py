"""Scene splits by glob pattern or list file."""

from __future__ import annotations

import numpy as np
import pytest

from pixvox.config.finetune import SceneSplitConfig
from pixvox.datasets.splits import resolve_split
from pixvox.io.clouds import CloudFormatError, LabeledCloud


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
