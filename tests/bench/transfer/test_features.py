"""Frozen per-point features: every point gets its own voxel's row, whatever the point order."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from pixvox.bench.transfer.arms import arm_config, load_arm
from pixvox.bench.transfer.features import build_arm_student, room_features
from pixvox.io.clouds import LabeledCloud

ARMS = Path(__file__).resolve().parents[3] / "configs" / "transfer"


def _cloud(rng, n=400):
    xyz = rng.uniform(0, 1.5, (n, 3)).astype(np.float32)
    return LabeledCloud(
        xyz, rng.integers(0, 256, (n, 3)).astype(np.uint8), rng.integers(-1, 20, n).astype(np.int32)
    )


def test_point_features_follow_the_points_through_a_shuffle():
    rng = np.random.default_rng(0)
    cfg = arm_config(load_arm("random", ARMS), 0, [])
    student = build_arm_student(cfg, None)
    cloud = _cloud(rng)
    perm = rng.permutation(cloud.num_points)
    shuffled = LabeledCloud(cloud.xyz[perm], cloud.rgb[perm], cloud.labels[perm])
    a, b = room_features(student, cloud, cfg), room_features(student, shuffled, cfg)
    pa, pb = a.feats[a.inverse], b.feats[b.inverse]
    assert pa.shape == (cloud.num_points, cfg.loss.embed_dim)
    np.testing.assert_allclose(pa[perm], pb, atol=1e-5)
    np.testing.assert_array_equal(b.labels, cloud.labels[perm])
    # points sharing a voxel share a feature; different colours make different voxel features
    assert np.unique(a.inverse).size == a.feats.shape[0]


def test_the_random_student_is_fixed_by_the_seed_and_no_color_takes_ones():
    cfg0, cfg1 = (arm_config(load_arm("random", ARMS), s, []) for s in (0, 1))
    w = [next(build_arm_student(c, None).parameters()).detach().clone() for c in (cfg0, cfg0, cfg1)]
    assert torch.equal(w[0], w[1]) and not torch.equal(w[0], w[2])
    nc = arm_config(load_arm("no_color", ARMS), 0, [])
    f = room_features(build_arm_student(nc, None), _cloud(np.random.default_rng(1)), nc)
    assert f.feats.shape[1] == nc.loss.embed_dim and np.isfinite(f.feats).all()
