"""Real data: PPKT on the ICL-NUIM living-room sequence drives the loss down and makes held-out voxels
retrieve their own pixels among 1024 candidates far above chance."""

from __future__ import annotations

from pathlib import Path

import pytest

from pixvox.engine.logger import read_metrics
from pixvox.pretrain.run import main

from .conftest import REPO


@pytest.mark.slow
def test_icl_pretraining_learns_voxel_to_pixel_retrieval(shared_data, tmp_path):
    from pixvox.prep import fusion as make_fusions
    from pixvox.prep import sequence as rgbd_sequence

    frames = tmp_path / "frames"
    rgbd_sequence.export_sequence(shared_data / "icl_livingroom1", frames / "livingroom1")
    fusions = tmp_path / "fusions"
    make_fusions.make_fusions(
        frames, fusions, voxel_size=0.05, depth_max=6.0, image_size=(96, 128), progress=False
    )
    cfg = str(REPO / "configs/pretrain/icl_livingroom.yaml")
    summary = main(
        [
            cfg,
            f"data.root={fusions}",
            f"experiment.output_root={tmp_path}",
            "data.image_size=[96, 128]",
            "train.max_steps=120",
            "train.checkpoint_every=60",
            "train.log_every=10",
            "train.num_workers=1",
            "student.name=Res16UNet14T",
            "logging.wandb=disabled",
            "logging.progress_bar=false",
            "--resume",
            "none",
        ]
    )
    rows = read_metrics(Path(summary["run_dir"]) / "metrics.jsonl")
    losses = [r["loss"] for r in rows if "loss" in r]
    evals = [r for r in rows if "eval_acc" in r]
    # held out: every 10th of the 211 frames (data.holdout_every=10), never trained on
    assert losses[-1] < losses[0] - 0.5, losses
    assert evals[-1]["eval_acc"] >= 20 * evals[-1]["eval_chance"], evals[-1]
