"""End-to-end fine-tuning runs: outputs and resume on tiny rooms, and real ScanNet data vs a baseline."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from plyfile import PlyData

from pixvox.datasets.segmentation import IGNORE
from pixvox.engine.checkpoint import load_checkpoint
from pixvox.engine.logger import read_metrics
from pixvox.evaluation import constant_prediction_metrics
from pixvox.finetune.run import main
from pixvox.prep.scannet.meshes import read_scannet_npy

from .conftest import REPO, make_pretrain_checkpoint

CONFIG = str(REPO / "configs/finetune/synthetic.yaml")


def tiny_args(root: Path, out: Path, name: str, **extra) -> list[str]:
    base = {
        "experiment.name": name,
        "experiment.output_root": str(out),
        "data.root": str(root),
        "data.synthetic.enabled": "false",
        "data.voxel_size": "0.2",
        "data.train.include": "[room0, room1]",
        "data.val.include": "[room2]",
        "data.augment_3d.elastic": "false",
        "student.name": "Res16UNet14T",
        "init.mode": "scratch",
        "optim.name": "adamw",
        "optim.lr": "0.01",
        "train.max_steps": "3",
        "train.batch_size": "2",
        "train.num_workers": "0",
        "train.log_every": "1",
        "train.checkpoint_every": "2",
        "eval.export_ply": "1",
        "logging.wandb": "disabled",
        "logging.progress_bar": "false",
    }
    base.update({k: str(v) for k, v in extra.items()})
    return [f"{k}={v}" for k, v in base.items()]


def test_run_writes_metrics_confusion_plys_and_resumes(tiny_rooms, tmp_path, capsys):
    summary = main(
        [CONFIG, *tiny_args(tiny_rooms, tmp_path, "rooms", **{"eval.every": 2}), "--resume", "none"]
    )
    run = tmp_path / "rooms"
    out = capsys.readouterr().out
    assert "mIoU" in out and "wall" in out and "pixvox finetune done" in out
    assert summary["steps"] == 3 and summary["train_scenes"] == 2 and summary["val_scenes"] == 1
    doc = json.loads((run / "eval/metrics.json").read_text())
    assert doc["class_names"] == ["floor", "wall", "table"] and doc["init"] == "scratch"
    assert doc["miou"] == pytest.approx(summary["miou"], abs=1e-6)
    labeled = int((np.load(tiny_rooms / "room2.npz")["labels"] != IGNORE).sum())
    assert doc["num_points"] == labeled == sum(map(sum, doc["confusion"]))  # every labeled point, once
    assert (run / "eval/confusion.png").stat().st_size > 2000
    ply = PlyData.read(str(run / "eval/predictions/room2.pred.ply"))["vertex"]
    assert len(ply["x"]) == len(np.load(tiny_rooms / "room2.npz")["xyz"])
    assert json.loads((run / "init.json").read_text())["mode"] == "scratch"
    rows = [r for r in read_metrics(run / "metrics.jsonl") if "loss" in r]
    assert [r["step"] for r in rows] == [1, 2, 3] and all(np.isfinite(r["loss"]) for r in rows)
    state = load_checkpoint(run / "checkpoints/step_00000003.pt")
    assert state["student_name"] == "Res16UNet14T" and "final.kernel" in state["student"]

    # resume: continue to step 5 from the step-3 checkpoint; no step is logged twice
    main(
        [
            CONFIG,
            *tiny_args(tiny_rooms, tmp_path, "rooms", **{"eval.every": 2}),
            "train.max_steps=5",
            "--resume",
            "auto",
        ]
    )
    rows = read_metrics(run / "metrics.jsonl")
    assert [r["step"] for r in rows if "loss" in r] == [1, 2, 3, 4, 5]
    # evaluation every 2 steps and once at the end of each part, never twice for one step
    assert [r["step"] for r in rows if "eval_miou" in r] == [2, 3, 4, 5]


def test_run_from_a_pretraining_checkpoint_and_linear_probe(tiny_rooms, tmp_path, seed):
    source = make_pretrain_checkpoint(tmp_path / "pre", seed=seed)
    pre = {"init.checkpoint": tmp_path / "pre", "eval.export_ply": 0, "eval.confusion_png": "false"}
    args = tiny_args(tiny_rooms, tmp_path, "pre_ft", **pre, **{"init.mode": "pretrained"})
    main([CONFIG, *args, "--resume", "none"])
    info = json.loads((tmp_path / "pre_ft/init.json").read_text())
    assert info["loaded"] == len(source) - 2 and sorted(info["new_head"]) == ["final.bias", "final.kernel"]

    args = tiny_args(tiny_rooms, tmp_path, "probe", **pre, **{"init.mode": "linear_probe"})
    main([CONFIG, *args, "--resume", "none"])
    trained = load_checkpoint(tmp_path / "probe/checkpoints/step_00000003.pt")["student"]
    for k, v in source.items():
        if not k.startswith("final."):
            assert torch.equal(trained[k], v), k  # frozen backbone, BN statistics included
    info = json.loads((tmp_path / "probe/init.json").read_text())
    assert info["trainable_parameters"] == trained["final.kernel"].numel() + trained["final.bias"].numel()


def test_backbone_lr_factor_zero_moves_only_the_head(tiny_rooms, tmp_path, seed):
    # optim.backbone_lr_factor=0 with SGD and no weight decay: the backbone's weights stay bit-equal to
    # the checkpoint's (its BatchNorm statistics still update: it trains), while the new head moves.
    source = make_pretrain_checkpoint(tmp_path / "pre", seed=seed)
    extra = {
        "init.checkpoint": tmp_path / "pre",
        "init.mode": "pretrained",
        "eval.export_ply": 0,
        "eval.confusion_png": "false",
        "optim.name": "sgd",
        "optim.weight_decay": 0.0,
        "optim.backbone_lr_factor": 0.0,
    }
    main([CONFIG, *tiny_args(tiny_rooms, tmp_path, "slow_backbone", **extra), "--resume", "none"])
    trained = load_checkpoint(tmp_path / "slow_backbone/checkpoints/step_00000003.pt")["student"]
    weights = [
        k for k in source if not k.startswith("final.") and "running_" not in k and "num_batches" not in k
    ]
    assert weights and all(torch.equal(trained[k], source[k]) for k in weights)
    assert any(not torch.equal(trained[k], source[k]) for k in source if "running_mean" in k)
    initial = load_checkpoint(tmp_path / "slow_backbone/checkpoints/step_00000002.pt")["student"]
    assert not torch.equal(trained["final.kernel"], initial["final.kernel"])


@pytest.mark.slow
def test_real_scannet_finetuning_beats_the_majority_baseline(shared_data, tmp_path):
    """Train on scene0000_00 from scratch, evaluate on the other scan scene0000_01 (ScanNet-20 labels).

    10 cm voxels and 100 steps of 3 m crops: about 30 s on an idle 2-core CPU."""
    folder = shared_data / "scannet_scene0000"
    if not (folder / "scene0000_01_vert_all.npy").is_file():
        pytest.skip(f"ScanNet scans not found in {folder}")
    summary = main([
        str(REPO / "configs/finetune/scannet_scene0000.yaml"),
        f"data.root={tmp_path / 'clouds'}", f"data.scannet_npy={folder}",
        f"experiment.output_root={tmp_path}",
        "data.voxel_size=0.1", "data.crop_size=3.0", "train.max_steps=100", "eval.export_ply=0", "eval.confusion_png=false",
        "logging.wandb=disabled", "logging.progress_bar=false", "--resume", "none",
    ])  # fmt: skip
    train = read_scannet_npy(folder, "scene0000_00").labels
    val = read_scannet_npy(folder, "scene0000_01").labels
    majority = int(np.bincount(train[train >= 0], minlength=20).argmax())
    names = [str(i) for i in range(20)]
    baseline = constant_prediction_metrics(np.bincount(val[val >= 0], minlength=20), majority, names)
    print(
        f"mIoU {summary['miou']:.3f} (majority baseline {baseline.miou:.3f}); "
        f"OA {summary['oa']:.3f} (baseline {baseline.oa:.3f})"
    )
    assert summary["miou"] > 4 * baseline.miou
    assert summary["oa"] > baseline.oa + 0.1
