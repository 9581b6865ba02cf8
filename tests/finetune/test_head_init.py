"""init.head=probe: the classifier starts as a converged probe on the frozen features (LP-FT)."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pytest
import torch

from pixvox.comm import launch_local
from pixvox.config import FinetuneConfig, load_config
from pixvox.config.loader import ConfigError
from pixvox.datasets.segmentation import IGNORE, SegmentationDataset, collate_segmentation
from pixvox.engine.checkpoint import load_checkpoint
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


def _lpft_args(tiny_rooms, tmp_path, name: str, **extra) -> list[str]:
    """Fine-tuning from ``tmp_path/pre`` (made by the test) with init.head=probe."""
    lpft = {
        "init.checkpoint": tmp_path / "pre",
        "init.mode": "pretrained",
        "init.head": "probe",
        "data.subset.points_per_scene": 40,
        "eval.export_ply": 0,
        "eval.confusion_png": "false",
        **extra,
    }
    return [CONFIG, *tiny_args(tiny_rooms, tmp_path, name, **lpft)]


def test_finetuning_with_a_probe_head_records_the_fit(tiny_rooms, tmp_path):
    make_pretrain_checkpoint(tmp_path / "pre")
    summary = main([*_lpft_args(tiny_rooms, tmp_path, "lpft"), "--resume", "none"])
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


FIT_MESSAGE = "classifier from a converged probe"


def test_a_resumed_run_does_not_fit_the_probe_again(tiny_rooms, tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="pixvox")
    make_pretrain_checkpoint(tmp_path / "pre")
    main([*_lpft_args(tiny_rooms, tmp_path, "lpft"), "--resume", "none"])
    assert FIT_MESSAGE in caplog.text  # the first part fits it
    init_json = tmp_path / "lpft/init.json"
    written = init_json.stat().st_mtime_ns, init_json.read_text()
    caplog.clear()

    summary = main([*_lpft_args(tiny_rooms, tmp_path, "lpft"), "train.max_steps=5", "--resume", "auto"])
    assert summary["steps"] == 5
    assert "resumed from" in caplog.text and FIT_MESSAGE not in caplog.text
    assert (init_json.stat().st_mtime_ns, init_json.read_text()) == written  # the start's record stays


# SGD, as in the pretraining job's two-process test: equal gradients give equal weights.
TWO = {"train.max_steps": 2, "optim.name": "sgd", "optim.lr": 0.05, "train.checkpoint_every": 2}


def _two_process_worker(rank: int, root: str, out: str) -> None:
    from pixvox.finetune import run

    fits = []
    fit = run.init_head_from_probe

    def counted(*args, **kwargs):  # the real fit, counted
        fits.append(1)
        return fit(*args, **kwargs)

    run.init_head_from_probe = counted
    main([*_lpft_args(Path(root), Path(out), "two", **TWO), "--resume", "none"])
    (Path(out) / f"fits_rank{rank}.txt").write_text(str(len(fits)))


def test_two_processes_fit_the_probe_once_and_train_as_one(tiny_rooms, tmp_path):
    make_pretrain_checkpoint(tmp_path / "pre")
    main([*_lpft_args(tiny_rooms, tmp_path, "one", **TWO), "--resume", "none"])
    launch_local(_two_process_worker, 2, str(tiny_rooms), str(tmp_path))
    assert [(tmp_path / f"fits_rank{r}.txt").read_text() for r in (0, 1)] == ["1", "0"]
    one = load_checkpoint(tmp_path / "one/checkpoints/step_00000002.pt")["student"]
    two = load_checkpoint(tmp_path / "two/checkpoints/step_00000002.pt")["student"]
    # Without the broadcast, rank 1 trains its random classifier: its gradients, averaged into rank
    # 0's, move the weights away from the single process's.
    for k in ("final.kernel", "final.bias"):
        torch.testing.assert_close(two[k], one[k], rtol=1e-4, atol=2e-5, msg=k)
    assert json.loads((tmp_path / "two/init.json").read_text())["head_probe"]["labeled_points"] == 80
