"""The ScanNet benchmark module: class tables, NYU40 map, the seeded data-efficient subsets, and the
point-selection files (pixvox's, plain JSON, CSC's published torch files)."""

from __future__ import annotations

import json
import pickle

import numpy as np
import pytest
import torch

from pixvox.prep.scannet.benchmark import (
    SCANNET20_CLASS_NAMES,
    SCANNET200_CLASS_NAMES,
    ScanNetFormatError,
    apply_point_subset,
    limited_points_document,
    load_points_file,
    nyu40_to_scannet20,
    point_order,
    read_scene_list,
    select_scenes,
)
from tests.prep.scannet.readme_map import README_MAP

IGNORE = -1


def test_nyu40_table_is_the_readme_table():
    ids = np.arange(256)
    got = nyu40_to_scannet20(ids, "x")
    assert got.dtype == np.int32
    assert got.tolist() == [README_MAP.get(i, -1) for i in range(256)]
    assert [SCANNET20_CLASS_NAMES[README_MAP[k]] for k in (1, 5, 39)] == ["wall", "chair", "otherfurniture"]
    with pytest.raises(ScanNetFormatError, match="labels.npy.*not NYU40"):
        nyu40_to_scannet20(np.array([3, 300]), "labels.npy")
    with pytest.raises(ScanNetFormatError, match="labels.npy.*integers"):
        nyu40_to_scannet20(np.array([3.0]), "labels.npy")


def test_scannet200_table():
    assert len(SCANNET200_CLASS_NAMES) == len(set(SCANNET200_CLASS_NAMES)) == 200
    assert (
        SCANNET200_CLASS_NAMES[:3] == ("wall", "chair", "floor") and SCANNET200_CLASS_NAMES[-1] == "mattress"
    )
    assert all(n == n.strip() and n for n in SCANNET200_CLASS_NAMES)


def test_scannet200_labels_of_real_rooms_agree_with_scannet20(shared_data):
    # Pointcept's segment20 and segment200 of the same points: the most frequent ScanNet-200 class of
    # the points of a ScanNet-20 class is that class or a kind of it ("kitchen cabinet" for "cabinet").
    for room in ("scene0011_00", "scene0025_00"):
        folder = shared_data / "scannet_pointcept" / room
        s20, s200 = np.load(folder / "segment20.npy"), np.load(folder / "segment200.npy")
        assert s200.max() < 200 and s200.min() >= -1
        checked = 0
        for c, name in enumerate(SCANNET20_CLASS_NAMES):
            sel = (s20 == c) & (s200 >= 0)
            if name in SCANNET200_CLASS_NAMES and sel.sum() > 500:
                top = np.bincount(s200[sel]).argmax()
                assert name in SCANNET200_CLASS_NAMES[top], (room, name, SCANNET200_CLASS_NAMES[top])
                checked += 1
        assert checked >= 3, room


def test_point_order_is_a_seeded_nested_subset_of_the_labeled_points(seed):
    rng = np.random.default_rng(seed)
    labels = rng.integers(-1, 6, 5000)
    labeled = np.flatnonzero(labels != IGNORE)
    order = point_order(labels, "scene0000_00", seed)
    assert sorted(order.tolist()) == labeled.tolist()  # a permutation of the labeled points
    for budget in (20, 200):
        kept = apply_point_subset(labels, order[:budget], "scene0000_00")
        on = kept != IGNORE
        assert on.sum() == budget
        np.testing.assert_array_equal(kept[on], labels[on])  # same labels, only fewer
        assert set(np.flatnonzero(on)) <= set(order[:200].tolist())  # 20 ⊂ 200
    np.testing.assert_array_equal(order, point_order(labels, "scene0000_00", seed))  # fixed by (seed, scene)
    assert not np.array_equal(order[:20], point_order(labels, "scene0001_00", seed)[:20])
    assert not np.array_equal(order[:20], point_order(labels, "scene0000_00", seed + 1)[:20])
    everything = apply_point_subset(labels, order[: labeled.size + 10], "s")
    np.testing.assert_array_equal(everything, labels)  # a budget beyond the labeled points keeps them all
    fixed = apply_point_subset(labels, np.array([3, 7, 11]), "s")
    assert set(np.flatnonzero(fixed != IGNORE)) <= {3, 7, 11}
    with pytest.raises(IndexError, match="scene0009_00.*5000"):
        apply_point_subset(labels, np.array([5000]), "scene0009_00")


def test_scene_fractions_are_seeded_nested_and_order_free(seed):
    names = [f"scene{i:04d}_00" for i in range(300)]
    prev: set[str] = set()
    for f, k in ((0.01, 3), (0.05, 15), (0.10, 30), (0.20, 60)):
        picked = select_scenes(names, f, seed)
        assert len(picked) == k and picked == sorted(picked)  # kept in input order
        assert prev <= set(picked)
        prev = set(picked)
    shuffled = list(np.random.default_rng(seed).permutation(names))
    assert set(select_scenes(shuffled, 0.1, seed)) == set(select_scenes(names, 0.1, seed))
    assert select_scenes(names, 0.1, seed) != select_scenes(names, 0.1, seed + 1)
    assert len(select_scenes(names[:5], 0.01, seed)) == 1  # at least one scene
    assert select_scenes(names, 1.0, seed) == names


def test_scene_lists(tmp_path):
    (tmp_path / "1.txt").write_text("scene0003_00\n# a comment\n\n  scene0001_00  \n")
    assert read_scene_list(tmp_path / "1.txt") == ["scene0003_00", "scene0001_00"]
    with pytest.raises(ScanNetFormatError, match="nope.txt"):
        read_scene_list(tmp_path / "nope.txt")


class NotAnArray:
    """A pickled object that is not data: loading must refuse it, not construct it."""


@pytest.mark.parametrize("zip_format", [True, False])
def test_csc_points_file_is_read_without_executing_code(tmp_path, seed, zip_format):
    # CSC's published points20 ... points200: torch.save({scene: int64 array of point indices}).
    rng = np.random.default_rng(seed)
    sel = {"scene0000_00": rng.choice(80000, 20, replace=False), "scene0001_00": torch.arange(100, 120)}
    path = tmp_path / "points20"
    torch.save(sel, path, _use_new_zipfile_serialization=zip_format)
    got = load_points_file(path)
    assert not got.nested and sorted(got.scenes) == ["scene0000_00", "scene0001_00"]
    np.testing.assert_array_equal(got.indices("scene0000_00", 20), sel["scene0000_00"])
    np.testing.assert_array_equal(got.indices("scene0001_00", 0), np.arange(100, 120))  # 0: as given
    assert got.indices("scene0002_00", 20) is None  # not listed: the random draw applies
    with pytest.raises(ValueError, match="points20.*scene0000_00 has 20.*points_per_scene=50"):
        got.indices("scene0000_00", 50)
    bad = tmp_path / "evil"
    torch.save({"scene0000_00": NotAnArray()}, bad, _use_new_zipfile_serialization=zip_format)
    with pytest.raises(ScanNetFormatError, match="evil"):
        load_points_file(bad)


def test_limited_points_and_plain_json_files(tmp_path, seed):
    rng = np.random.default_rng(seed)
    orders = {"scene0000_00": rng.permutation(1000), "scene0001_00": rng.permutation(500)}
    doc = limited_points_document(orders, seed)
    assert doc["counts"] == [20, 50, 100, 200] and len(doc["scenes"]["scene0000_00"]) == 200
    (tmp_path / "limited_points.json").write_text(json.dumps(doc))
    got = load_points_file(tmp_path / "limited_points.json")
    assert got.nested
    for budget in (20, 200):
        np.testing.assert_array_equal(got.indices("scene0001_00", budget), orders["scene0001_00"][:budget])
    with pytest.raises(ValueError, match="nested subsets.*points_per_scene"):
        got.indices("scene0001_00", 0)
    (tmp_path / "plain.json").write_text(json.dumps({"scene0000_00": [4, 2, 9]}))
    plain = load_points_file(tmp_path / "plain.json")
    assert not plain.nested and plain.indices("scene0000_00", 0).tolist() == [4, 2, 9]
    (tmp_path / "broken.json").write_text('{"scene0000_00": [1, 2')
    with pytest.raises(ScanNetFormatError, match="broken.json"):
        load_points_file(tmp_path / "broken.json")
    (tmp_path / "floats.json").write_text(json.dumps({"scene0000_00": [1.5]}))
    with pytest.raises(ScanNetFormatError, match="floats.json.*scene0000_00"):
        load_points_file(tmp_path / "floats.json")
    with pytest.raises(FileNotFoundError, match="missing.json"):
        load_points_file(tmp_path / "missing.json")
    (tmp_path / "pickle.bin").write_bytes(pickle.dumps([1, 2], protocol=4))
    with pytest.raises(ScanNetFormatError, match="pickle.bin"):
        load_points_file(tmp_path / "pickle.bin")
