"""Segmentation dataset: exact voxel→point transfer, label budgets, splits, augmentation, ScanNet reader."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch

from pixvox.config.finetune import ColorAugmentConfig, SceneSplitConfig, SegAugment3DConfig, SegDataConfig
from pixvox.datasets.segmentation import (
    IGNORE,
    SCANNET20_CLASS_NAMES,
    SegmentationDataset,
    apply_point_budget,
    chromatic_augment,
    class_weights,
    collate_segmentation,
    horizontal_crop,
    random_point_transform,
    read_scannet_npy,
    resolve_split,
    scene_stream,
    select_scenes,
    voxel_majority_labels,
)
from pixvox.finetune.evaluate import predict_points
from pixvox.geometry import voxelize
from pixvox.io.clouds import CloudFormatError, CloudIndex, LabeledCloud


def make_index(root: Path, clouds: dict[str, LabeledCloud], classes: list[str]) -> CloudIndex:
    index = CloudIndex.open_or_create(root, classes)
    for name, cloud in clouds.items():
        index.add(name, cloud)
    index.write()
    return CloudIndex.load(root)


# A hand-made cloud at 1 m voxels: which voxel each point falls in, and each voxel's majority label.
HAND_XYZ = np.array([
    [0.2, 0.2, 0.2],    # voxel (0, 0, 0)  label 1
    [0.7, 0.1, 0.9],    # voxel (0, 0, 0)  label 1
    [0.5, 0.5, 0.5],    # voxel (0, 0, 0)  label 2   -> majority 1
    [1.5, 0.5, 0.5],    # voxel (1, 0, 0)  label 0
    [1.9, 0.9, 0.1],    # voxel (1, 0, 0)  label 2   -> tie 0 vs 2: smallest id, 0
    [-0.5, 0.5, 0.5],   # voxel (-1, 0, 0) ignored   -> no label
    [-0.1, 2.5, -0.5],  # voxel (-1, 2, -1) label 2
    [-0.9, 2.1, -0.2],  # voxel (-1, 2, -1) ignored  -> 2
], dtype=np.float32)  # fmt: skip
HAND_LABELS = np.array([1, 1, 2, 0, 2, -1, 2, -1], dtype=np.int32)
HAND_VOXEL = [(0, 0, 0), (0, 0, 0), (0, 0, 0), (1, 0, 0), (1, 0, 0), (-1, 0, 0), (-1, 2, -1), (-1, 2, -1)]
HAND_MAJORITY = {(0, 0, 0): 1, (1, 0, 0): 0, (-1, 0, 0): -1, (-1, 2, -1): 2}


class CoordinateClassifier(torch.nn.Module):
    """Predicts class (x + 2y - z) mod C for each voxel from its coordinates: a known voxel labeling."""

    def __init__(self, c: int) -> None:
        super().__init__()
        self.c = c

    def forward(self, feats: torch.Tensor, coords: torch.Tensor) -> torch.Tensor:
        cls = (coords[:, 1] + 2 * coords[:, 2] - coords[:, 3]).long() % self.c
        return torch.nn.functional.one_hot(cls, self.c).float()


def test_voxel_to_point_transfer_is_exact_on_a_hand_made_cloud(tmp_path):
    rgb = np.arange(24, dtype=np.uint8).reshape(8, 3) * 10
    index = make_index(tmp_path, {"hand": LabeledCloud(HAND_XYZ, rgb, HAND_LABELS)}, ["a", "b", "c"])
    cfg = SegDataConfig(root=str(tmp_path), voxel_size=1.0)
    ds = SegmentationDataset(index, ["hand"], cfg, train=False)
    item = ds[0]
    per_point_voxel = [tuple(v) for v in item["coords"][item["inverse"]].tolist()]
    assert per_point_voxel == HAND_VOXEL
    assert item["coords"].shape == (4, 3) and item["coords"].dtype == torch.int32
    labels = {tuple(c): int(lab) for c, lab in zip(item["coords"].tolist(), item["labels"])}
    assert labels == HAND_MAJORITY
    np.testing.assert_array_equal(item["point_labels"].numpy(), HAND_LABELS)
    # voxel features: mean color of the voxel's points, in [-0.5, 0.5]
    first = [i for i, v in enumerate(HAND_VOXEL) if v == (0, 0, 0)]
    row = per_point_voxel.index((0, 0, 0))
    expect = rgb[first].astype(np.float64).mean(0) / 255 - 0.5
    np.testing.assert_allclose(item["feats"][item["inverse"][row]].numpy(), expect, atol=1e-6)
    # predictions of voxels reach exactly the points inside them
    _, pred = predict_points(CoordinateClassifier(3), item, torch.device("cpu"))
    expect_pred = [(x + 2 * y - z) % 3 for x, y, z in HAND_VOXEL]
    assert pred.tolist() == expect_pred


def test_collate_shifts_the_point_to_voxel_map(tmp_path, seed):
    rng = np.random.default_rng(seed)
    clouds = {
        f"s{i}": LabeledCloud(rng.uniform(-2, 2, (n, 3)).astype(np.float32),
                              rng.integers(0, 255, (n, 3)).astype(np.uint8),
                              rng.integers(-1, 4, n).astype(np.int32))
        for i, n in enumerate((300, 150))
    }  # fmt: skip
    index = make_index(tmp_path, clouds, list("abcd"))
    cfg = SegDataConfig(root=str(tmp_path), voxel_size=0.3)
    ds = SegmentationDataset(index, ["s0", "s1"], cfg, train=False)
    items = [ds[0], ds[1]]
    batch = collate_segmentation(items)
    assert batch["coords"].shape == (sum(it["coords"].shape[0] for it in items), 4)
    for b, it in enumerate(items):
        p0, p1 = batch["point_offsets"][b], batch["point_offsets"][b + 1]
        rows = batch["coords"][batch["inverse"][p0:p1]]
        assert (rows[:, 0] == b).all()
        assert torch.equal(rows[:, 1:], it["coords"][it["inverse"]])
        # every point's voxel is floor(xyz / voxel size)
        xyz = clouds[it["name"]].xyz.astype(np.float64)
        np.testing.assert_array_equal(rows[:, 1:].numpy(), np.floor(xyz / 0.3).astype(np.int32))


def test_voxelize_and_majority_match_brute_force(seed):
    rng = np.random.default_rng(seed)
    n = 2000
    xyz = rng.normal(scale=1.5, size=(n, 3))
    labels = rng.integers(-1, 5, n)
    coords, inverse, _ = voxelize(xyz, 0.4)
    np.testing.assert_array_equal(coords[inverse], np.floor(xyz / 0.4).astype(np.int32))
    assert len({tuple(c) for c in coords.tolist()}) == coords.shape[0]
    got = voxel_majority_labels(labels, inverse, coords.shape[0])
    for v in range(coords.shape[0]):
        lab = labels[(inverse == v) & (labels != IGNORE)]
        if lab.size == 0:
            assert got[v] == IGNORE
        else:
            counts = np.bincount(lab)
            assert got[v] == int(np.flatnonzero(counts == counts.max())[0])


def test_point_budget_keeps_exactly_n_labels_per_scene(seed):
    rng = np.random.default_rng(seed)
    labels = rng.integers(-1, 6, 5000)
    labeled = int((labels != IGNORE).sum())
    for budget in (20, 200):
        kept = apply_point_budget(labels, budget, scene_stream(seed, "scene0000_00"))
        on = kept != IGNORE
        assert on.sum() == budget
        np.testing.assert_array_equal(kept[on], labels[on])  # same labels, only fewer
        again = apply_point_budget(labels, budget, scene_stream(seed, "scene0000_00"))
        np.testing.assert_array_equal(kept, again)  # fixed by (seed, scene)
        other = apply_point_budget(labels, budget, scene_stream(seed, "scene0001_00"))
        assert not np.array_equal(kept, other)
    assert (apply_point_budget(labels, labeled + 10, scene_stream(seed, "x")) == labels).all()
    fixed = apply_point_budget(labels, 0, None, [3, 7, 11])
    assert set(np.flatnonzero(fixed != IGNORE)) <= {3, 7, 11}
    with pytest.raises(IndexError, match="5000"):
        apply_point_budget(labels, 0, None, [5000])


def test_budget_reaches_training_items_and_label_counts(tmp_path, seed):
    rng = np.random.default_rng(seed)
    n = 3000
    cloud = LabeledCloud(
        rng.uniform(0, 3, (n, 3)).astype(np.float32),
        np.zeros((n, 3), np.uint8),
        rng.integers(0, 3, n).astype(np.int32),
    )
    index = make_index(tmp_path, {"r": cloud}, list("abc"))
    cfg = SegDataConfig(root=str(tmp_path), voxel_size=0.5)
    cfg.subset.points_per_scene = 25
    cfg.subset.seed = seed
    cfg.augment_3d.elastic = False
    train = SegmentationDataset(index, ["r"], cfg, train=True)
    assert train.label_counts().sum() == 25
    item = train[(0, seed)]
    assert int((item["point_labels"] != IGNORE).sum()) == 25
    assert 1 <= int((item["labels"] != IGNORE).sum()) <= 25
    full = SegmentationDataset(index, ["r"], cfg, train=False)  # evaluation sees every label
    assert int((full[0]["point_labels"] != IGNORE).sum()) == n


def test_splits_by_pattern_and_list_file(tmp_path):
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
    picked = select_scenes(names, 0.4, seed=1)
    assert len(picked) == 2 and set(picked) <= set(names) and picked == select_scenes(names, 0.4, seed=1)
    assert len(select_scenes(names, 0.01, seed=1)) == 1  # at least one scene


def test_point_transform_is_a_similarity_about_the_up_axis(seed):
    rng = np.random.default_rng(seed)
    cfg = SegAugment3DConfig(up_axis="z", tilt=0.05, scale=(0.8, 1.2), translate=0.3)
    for _ in range(20):
        T = random_point_transform(rng, cfg)
        A = T[:3, :3]
        s2 = (A.T @ A)[0, 0]
        np.testing.assert_allclose(A.T @ A, s2 * np.eye(3), atol=1e-9)
        assert 0.8**2 - 1e-9 <= s2 <= 1.2**2 + 1e-9
        up = A @ np.array([0.0, 0.0, 1.0]) / math.sqrt(s2)
        assert abs(up[2]) >= math.cos(0.05 * math.sqrt(2)) - 1e-9  # the up axis only tilts a little
        assert np.all(np.abs(T[:3, 3]) <= 0.3)


def test_crop_and_chromatic_augmentation(seed):
    rng = np.random.default_rng(seed)
    xyz = rng.uniform(0, 10, (5000, 3))
    labels = np.full(5000, IGNORE)
    labels[rng.choice(5000, 5, replace=False)] = 1
    keep = horizontal_crop(xyz, labels, 2.0, "z", rng)
    assert (labels[keep] != IGNORE).any()  # centred on a labeled point
    span = xyz[keep][:, :2].max(0) - xyz[keep][:, :2].min(0)
    assert (span <= 2.0).all() and xyz[keep][:, 2].max() - xyz[keep][:, 2].min() > 5  # full height
    rgb = rng.uniform(0, 255, (100, 3))
    none = ColorAugmentConfig(auto_contrast=0.0, translation=0.0, jitter_std=0.0)
    np.testing.assert_array_equal(chromatic_augment(rgb, rng, none), rgb)
    out = chromatic_augment(rgb, rng, ColorAugmentConfig(auto_contrast=1.0, translation=0.5, jitter_std=0.2))
    assert out.min() >= 0 and out.max() <= 255 and not np.allclose(out, rgb)


def test_class_weights():
    w = class_weights(np.array([100, 25, 0, 400]), "inverse_sqrt")
    f = np.array([100, 25, 400]) / 525
    expect = 1 / np.sqrt(f)
    expect /= expect.mean()
    np.testing.assert_allclose(w.numpy()[[0, 1, 3]], expect, rtol=1e-6)
    assert w[2] == 0
    assert class_weights(np.array([1, 2]), "none") is None
    with pytest.raises(ValueError, match="2 classes"):
        class_weights(np.array([1, 2]), [1.0, 2.0, 3.0])


def test_scannet_npy_reader_maps_nyu40_to_scannet20(shared_data):
    folder = shared_data / "scannet_scene0000"
    cloud = read_scannet_npy(folder, "scene0000_00")
    nyu = np.load(folder / "scene0000_00_sem_label_all.npy").astype(np.int64)
    verts = np.load(folder / "scene0000_00_vert_all.npy")
    assert cloud.num_points == verts.shape[0] and cloud.labels.dtype == np.int32
    np.testing.assert_array_equal(cloud.xyz, verts[:, :3])
    valid = {
        1: "wall",
        2: "floor",
        3: "cabinet",
        5: "chair",
        14: "desk",
        16: "curtain",
        24: "refrigerator",
        33: "toilet",
        39: "otherfurniture",
    }
    for nyu_id, name in valid.items():
        sel = nyu == nyu_id
        if sel.any():
            assert (cloud.labels[sel] == SCANNET20_CLASS_NAMES.index(name)).all(), name
    others = ~np.isin(nyu, [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 14, 16, 24, 28, 33, 34, 36, 39])
    assert (cloud.labels[others] == IGNORE).all() and others.any()
    assert 0.6 < (cloud.labels >= 0).mean() < 0.9  # README: about 75% of points are in the 20 classes


def test_scannet_reader_names_a_bad_file(tmp_path):
    np.save(tmp_path / "s_vert_all.npy", np.zeros((5, 6), np.float32))
    np.save(tmp_path / "s_sem_label_all.npy", np.zeros(4, np.uint32))
    with pytest.raises(CloudFormatError, match="s_sem_label_all.npy"):
        read_scannet_npy(tmp_path, "s")
    with pytest.raises(CloudFormatError, match="not found"):
        read_scannet_npy(tmp_path, "missing")


def test_empty_split_is_refused(tmp_path):
    cloud = LabeledCloud(np.zeros((1, 3), np.float32), np.zeros((1, 3), np.uint8), np.zeros(1, np.int32))
    index = make_index(tmp_path, {"a": cloud}, ["x"])
    with pytest.raises(ValueError, match="data.train"):
        SegmentationDataset(index, [], SegDataConfig(root=str(tmp_path)), train=True)
