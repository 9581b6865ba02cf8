"""Real data: configs/pretrain/pointcontrast_scannet0378.yaml runs a few steps on the real ScanNet
sequence scene0378_00, with view pairs of different frames whose stored overlap is the brute-force one."""

from __future__ import annotations

import math

import pytest

from pixvox.engine.logger import read_metrics
from pixvox.io.fusions import FusionIndex
from pixvox.pretrain.run import main

from .conftest import REPO

CONFIG = str(REPO / "configs/pretrain/pointcontrast_scannet0378.yaml")


@pytest.mark.slow
def test_pointcontrast_config_runs_on_a_real_scannet_sequence(shared_data, tmp_path):
    from pixvox.prep import fusion as make_fusions
    from pixvox.prep import sequence as rgbd_sequence

    frames = tmp_path / "frames"
    # the first 40 frames (the config's own first use exports and fuses all 190)
    rgbd_sequence.export_sequence(shared_data / "scannet_scene0378_00", frames / "scene0378", max_frames=40)
    fusions = tmp_path / "fusions"
    make_fusions.make_fusions(
        frames, fusions, voxel_size=0.1, depth_max=6.0, image_size=(60, 80), progress=False
    )
    index = FusionIndex.load(fusions)
    pairs = index.view_pairs(0.3)
    assert len(pairs) >= len(index)  # consecutive real frames overlap
    for p in pairs[:: max(1, len(pairs) // 5)]:  # the stored figure is the brute-force count
        a, b = (set(map(tuple, index.load_sample(k).coords.tolist())) for k in (p.a, p.b))
        assert p.shared == len(a & b) and p.overlap == pytest.approx(len(a & b) / min(len(a), len(b)))
        assert p.overlap >= 0.3
    summary = main(
        [
            CONFIG,
            f"data.root={fusions}",
            "data.voxel_size=0.1",
            f"experiment.output_root={tmp_path}",
            "student.name=Res16UNet14T",
            "loss.terms.pointcontrast.num_pairs=128",
            "train.max_steps=3",
            "train.batch_size=2",
            "train.num_workers=0",
            "train.log_every=1",
            "train.checkpoint_every=3",
            "logging.wandb=disabled",
            "logging.progress_bar=false",
            "--resume",
            "none",
        ]
    )
    rows = [r for r in read_metrics(tmp_path / "pointcontrast_scannet0378/metrics.jsonl") if "loss" in r]
    assert [r["step"] for r in rows] == [1, 2, 3] and summary["steps"] == 3
    for r in rows:
        assert math.isfinite(r["loss"]) and r["pairs_pointcontrast"] == 128  # 64 distinct pairs per sample
        assert r["loss"] == pytest.approx(r["loss_pointcontrast"])
    assert "eval_acc" in summary
