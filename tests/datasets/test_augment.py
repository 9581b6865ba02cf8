"""Segmentation augmentation: the point transform is a similarity about the up axis; crop and color."""

from __future__ import annotations

import math

import numpy as np

from pixvox.config.finetune import ColorAugmentConfig, SegAugment3DConfig
from pixvox.datasets.augment import chromatic_augment, horizontal_crop, random_point_transform
from pixvox.datasets.segmentation import IGNORE


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
