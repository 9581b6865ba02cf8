"""Segmentation dataset: exact voxel→point transfer, label budgets, majority labels, collate, class weights."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from pixvox.config.finetune import SegDataConfig
from pixvox.datasets.segmentation import (
    IGNORE,
    SegmentationDataset,
    class_weights,
    collate_segmentation,
    voxel_majority_labels,
)
from pixvox.finetune.evaluate import predict_points
from pixvox.geometry import voxelize
from pixvox.io.clouds import LabeledCloud

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


def test_voxel_to_point_transfer_is_exact_on_a_hand_made_cloud(tmp_path, make_index):
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


def test_collate_shifts_the_point_to_voxel_map(tmp_path, seed, make_index):
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


def test_budget_reaches_training_items_and_label_counts(tmp_path, seed, make_index):
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


def test_empty_split_is_refused(tmp_path, make_index):
    cloud = LabeledCloud(np.zeros((1, 3), np.float32), np.zeros((1, 3), np.uint8), np.zeros(1, np.int32))
    index = make_index(tmp_path, {"a": cloud}, ["x"])
    with pytest.raises(ValueError, match="data.train"):
        SegmentationDataset(index, [], SegDataConfig(root=str(tmp_path)), train=True)


def test_whole_scene_is_unaugmented_with_the_training_budget(tmp_path, seed, make_index):
    # init.head=probe fits on these items: every point, the stored geometry and colors, and exactly
    # the labels training sees (the budget), whatever the crop and augmentation settings.
    rng = np.random.default_rng(seed)
    n = 2000
    cloud = LabeledCloud(
        rng.uniform(0, 6, (n, 3)).astype(np.float32),
        rng.integers(0, 256, (n, 3)).astype(np.uint8),
        rng.integers(-1, 3, n).astype(np.int32),
    )
    index = make_index(tmp_path, {"r": cloud}, list("abc"))
    cfg = SegDataConfig(root=str(tmp_path), voxel_size=0.25, crop_size=1.0)
    cfg.subset.points_per_scene, cfg.subset.seed = 30, seed
    train = SegmentationDataset(index, ["r"], cfg, train=True)
    item = train.whole_scene("r")
    assert torch.equal(item["point_index"], torch.arange(n))
    assert torch.equal(item["point_labels"], torch.from_numpy(train.load_labels("r")))
    assert int((item["point_labels"] != IGNORE).sum()) == 30
    coords, inverse, colors = voxelize(cloud.xyz.astype(np.float64), 0.25, cloud.rgb)
    assert torch.equal(item["coords"], torch.from_numpy(coords))
    assert torch.equal(item["inverse"], torch.from_numpy(inverse))
    assert torch.equal(item["feats"], torch.from_numpy((colors / 255.0 - 0.5).astype(np.float32)))
    assert train[(0, seed)]["point_index"].numel() < n  # the training items are cropped
