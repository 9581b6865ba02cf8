"""PointContrast as published: views are different overlapping fusions, matched in the world frame."""

from __future__ import annotations

import json
import shutil

import numpy as np
import torch

from pixvox.config import PretrainConfig, load_config
from pixvox.datasets.fusion import FusionPretrainDataset, collate_pretrain, holdout_split
from pixvox.io.fusions import FusionIndex
from pixvox.objectives.pointcontrast import match_views
from pixvox.prep.fusion_pairs import view_pairs_json
from pixvox.pretrain.model import PretrainNet
from pixvox.pretrain.step import PAIR_STREAM, PretrainStep

from .test_seam import _cfg

PC = "{name: pointcontrast, weight: 1, num_pairs: 64, views: overlap, min_overlap: 0.3}"


def _dataset(cfg: PretrainConfig, root, indices=None, min_overlap=0.3) -> FusionPretrainDataset:
    return FusionPretrainDataset(
        root, cfg.data, indices, augment=True, inputs={"partner"}, partner_min_overlap=min_overlap
    )


def test_every_matched_pair_is_the_same_world_voxel(tiny_fusions, tmp_path):
    cfg = _cfg(tiny_fusions, tmp_path, PC)
    cfg.data.augment_3d.color_jitter = 0.4
    ds = _dataset(cfg, tiny_fusions)
    batch = collate_pretrain([ds[(0, 5)], ds[(1, 6)], ds[(len(ds) - 1, 7)]])
    row1, row2, sample = match_views(batch)
    c1, c2 = batch["orig_coords"], batch["orig_coords2"]
    assert torch.equal(c1[row1], c2[row2]) and torch.equal(sample, c2[row2, 0].long())
    # complete: every (sample, world voxel) stored in both views is matched (brute force)
    common = set(map(tuple, c1.tolist())) & set(map(tuple, c2.tolist()))
    assert len(common) == row1.numel() > 0
    # the views are different fusions, each augmented on its own
    assert all(a != b for a, b in zip(batch["names"], batch["partners"]))
    assert not torch.equal(batch["coords"][:, 1:].min(0).values, c1[:, 1:].min(0).values)
    # the sampled pairs are matched voxels, followed to their augmented rows
    seeds = [int(s) ^ PAIR_STREAM for s in batch["seeds"]]
    net = PretrainNet(cfg)
    step = PretrainStep(net, cfg, torch.device("cpu"))
    i1, i2 = step.objectives[0].select_pairs(batch, {}, seeds)
    candidates = set(zip(batch["orig_to_aug"][row1].tolist(), batch["orig_to_aug2"][row2].tolist()))
    assert i1.numel() > 0 and all(p in candidates for p in zip(i1.tolist(), i2.tolist()))
    # same world voxel, different colour jitter per view: the inputs of a pair differ
    assert not torch.allclose(batch["feats"][i1], batch["feats2"][i2])
    loss, metrics, _ = step.losses(batch, gather=False)
    loss.backward()
    assert torch.isfinite(loss) and metrics["pairs"] == i1.numel()


def test_a_pair_below_the_threshold_is_never_sampled(tiny_fusions, tmp_path):
    root = tmp_path / "fusions"
    shutil.copytree(tiny_fusions, root)
    index = FusionIndex.load(root)
    by_scene: dict[str, list] = {}
    for i, r in enumerate(index.samples):
        by_scene.setdefault(r.name.rsplit("_", 1)[0], []).append((r.name, index.load_sample(i).coords))
    d = json.loads((root / "index.json").read_text())
    d["view_pairs"] = view_pairs_json(by_scene, 0.01)  # store low-overlap pairs too
    (root / "index.json").write_text(json.dumps(d))
    index = FusionIndex.load(root)
    overlap = {frozenset((p.a, p.b)): p.overlap for p in index.view_pairs(0.01)}
    assert any(o < 0.3 for o in overlap.values()), "the test needs stored pairs below the threshold"
    cfg = _cfg(root, tmp_path, PC)
    ds = _dataset(cfg, root)
    drawn = set()
    for i in range(len(ds)):
        for seed in range(25):
            partner = ds[(i, seed)]["partner"]
            j = next(k for k, r in enumerate(index.samples) if r.name == partner)
            drawn.add(frozenset((ds.indices[i], j)))
    assert all(overlap[p] >= 0.3 for p in drawn)
    assert drawn == {p for p, o in overlap.items() if o >= 0.3 and p <= set(ds.indices)}  # all are used
    # a split pairs only within itself: held-out frames never enter training as partners
    train, held = holdout_split(len(index), 3)
    ds_train = _dataset(cfg, root, train)
    assert all(set(p) <= set(train) for p in ds_train.partners) and ds_train.num_without_partner >= 0
    assert not set(np.concatenate([np.array(p) for p in ds_train.partners]).tolist()) & set(held)
    ds_low = _dataset(cfg, root, min_overlap=0.05)
    assert len(ds_low) >= len(ds)


def test_config_rejects_a_bad_min_overlap(tiny_fusions, tmp_path):
    import pytest

    from pixvox.config import ConfigError

    with pytest.raises(ConfigError, match=r"'loss\.terms\[0\]\.min_overlap' must be in \(0, 1\]"):
        load_config(PretrainConfig, None, ["loss.terms=[{name: pointcontrast, min_overlap: 1.5}]"])
    with pytest.raises(ConfigError, match=r"'loss\.terms\[0\]\.views' must be one of 'overlap', 'augment'"):
        load_config(PretrainConfig, None, ["loss.terms=[{name: pointcontrast, views: same}]"])
