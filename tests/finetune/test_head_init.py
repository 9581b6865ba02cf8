"""init.head=probe: the classifier starts as a converged probe on the frozen features (LP-FT)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from pixvox.config import FinetuneConfig, load_config
from pixvox.config.loader import ConfigError
from pixvox.datasets.segmentation import IGNORE, SegmentationDataset, collate_segmentation
from pixvox.evaluation.probe import fit_linear_probe
from pixvox.finetune.head_init import init_head_from_probe
from pixvox.finetune.model import SegmentationNet, initialize
from pixvox.finetune.run import main
from pixvox.io.clouds import CloudIndex
from pixvox.sparse import features_in_input_order, sparse_tensor

from .conftest import make_pretrain_checkpoint, room_cloud
from .test_run import CONFIG, tiny_args


def _cfg(tiny_rooms, tmp_path, *overrides: str) -> FinetuneConfig:
    return load_config(
        FinetuneConfig,
        None,
        [
            "student.name=Res16UNet14T",
            f"data.root={tiny_rooms}",
            "data.voxel_size=0.2",
            "data.train.include=[room0, room1]",
            "data.val.include=[room2]",
            "data.subset.points_per_scene=40",
            "init.mode=pretrained",
            f"init.checkpoint={tmp_path / 'pre'}",
            "init.head=probe",
            *overrides,
        ],
    )


def test_probe_head_gives_the_logits_of_an_independently_fitted_probe(tiny_rooms, tmp_path, seed):
    make_pretrain_checkpoint(tmp_path / "pre", seed=seed)
    cfg = _cfg(tiny_rooms, tmp_path, f"data.subset.seed={seed}")
    index = CloudIndex.load(tiny_rooms)
    ds = SegmentationDataset(index, ["room0", "room1"], cfg.data, train=True)
    net = SegmentationNet(cfg.student, index.num_classes)
    initialize(net, cfg)
    info = init_head_from_probe(net, ds, torch.device("cpu"), cfg.init.probe_l2)
    assert net.training  # left in the mode it was in

    # The reference: features of the labeled voxels taken here, majority-free per-class counts by
    # brute force, the probe fitted directly; its float64 logits against the network's own output.
    net.eval()
    feats, counts, logits = [], [], []
    for name in ("room0", "room1"):
        b = collate_segmentation([ds.whole_scene(name)])
        x = sparse_tensor(b["feats"], b["coords"])
        with torch.no_grad():
            f = features_in_input_order(net.student.forward_features(x), x).double().numpy()
            out = net(b["feats"], b["coords"]).double().numpy()
        n = np.zeros((f.shape[0], index.num_classes))
        for v, y in zip(b["inverse"].tolist(), b["point_labels"].tolist()):
            if y != IGNORE:
                n[v, y] += 1
        rows = n.sum(1) > 0
        feats.append(f[rows])
        counts.append(n[rows])
        logits.append(out[rows])
    x, n, got = np.concatenate(feats), np.concatenate(counts), np.concatenate(logits)
    assert n.sum() == 80 and info["labeled_points"] == 80 and info["rows"] == x.shape[0]
    ref = fit_linear_probe(x, n, l2=cfg.init.probe_l2)
    want = ref.logits(x)
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-3 * np.abs(want).max())
    acc = (n[np.arange(len(n)), want.argmax(1)]).sum() / n.sum()
    assert info["train_point_accuracy"] == pytest.approx(acc)
    assert acc > 0.9  # floor, walls and table differ in color: the probe separates the labeled voxels


def test_a_new_head_is_left_as_initialized(tiny_rooms, tmp_path):
    make_pretrain_checkpoint(tmp_path / "pre")
    cfg = _cfg(tiny_rooms, tmp_path, "init.head=new")
    torch.manual_seed(0)
    net = SegmentationNet(cfg.student, 3)
    torch.manual_seed(0)
    fresh = SegmentationNet(cfg.student, 3)
    initialize(net, cfg)
    assert torch.equal(net.student.final.kernel, fresh.student.final.kernel)


def test_finetuning_with_a_probe_head_records_the_fit(tiny_rooms, tmp_path):
    make_pretrain_checkpoint(tmp_path / "pre")
    extra = {
        "init.checkpoint": tmp_path / "pre",
        "init.mode": "pretrained",
        "init.head": "probe",
        "data.subset.points_per_scene": 40,
        "eval.export_ply": 0,
        "eval.confusion_png": "false",
    }
    summary = main([CONFIG, *tiny_args(tiny_rooms, tmp_path, "lpft", **extra), "--resume", "none"])
    assert summary["steps"] == 3
    info = json.loads((tmp_path / "lpft/init.json").read_text())
    assert info["head"] == "probe" and info["head_probe"]["labeled_points"] == 80
    assert info["head_probe"]["convergence"]["converged"]


@pytest.mark.parametrize(
    ("override", "key"), [("init.head=lp", "init.head"), ("init.probe_l2=0", "init.probe_l2")]
)
def test_bad_head_settings_name_the_key(tiny_rooms, tmp_path, override, key):
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        _cfg(tiny_rooms, tmp_path, override)


def test_no_labeled_voxel_is_a_clear_error(tmp_path):
    rng = np.random.default_rng(0)
    cloud = room_cloud(rng)
    cloud.labels[:] = -1
    index = CloudIndex.open_or_create(tmp_path / "clouds", ["floor", "wall", "table"])
    index.add("empty_room", cloud)
    index.write()
    make_pretrain_checkpoint(tmp_path / "pre")
    cfg = _cfg(
        tmp_path / "clouds", tmp_path, "data.train.include=[empty_room]", "data.val.include=[empty_room]"
    )
    ds = SegmentationDataset(CloudIndex.load(tmp_path / "clouds"), ["empty_room"], cfg.data, train=True)
    net = SegmentationNet(cfg.student, 3)
    initialize(net, cfg)
    with pytest.raises(ValueError, match="empty_room.*no labeled voxels"):
        init_head_from_probe(net, ds, torch.device("cpu"), cfg.init.probe_l2)
