"""Real data: the objective configs of issue 12 (PPKT F = 1 and F = 5, masked_2d, PPKT + masked_2d on
ScanNet scene0378_00) each run a few steps from the checkout on the shared sequence's first frames.
PointContrast as published has its own test (test_pointcontrast_real.py)."""

from __future__ import annotations

import math

import pytest

from pixvox.config import PretrainConfig, load_config
from pixvox.engine.logger import read_metrics
from pixvox.io.fusions import FusionIndex
from pixvox.pretrain.run import main

from .conftest import REPO

CONFIGS = {
    "ppkt_scannet0378": ("ppkt",),
    "ppkt_f5_scannet0378": ("ppkt",),
    "masked_2d_scannet0378": ("masked_2d",),
    "ppkt_masked_2d_scannet0378": ("ppkt", "masked_2d"),
}


@pytest.fixture(scope="module")
def scannet_frames(tmp_path_factory):
    """The first 30 frames of the shared ScanNet sequence, exported once for this module."""
    from tests.conftest import SHARED_DATA

    if not SHARED_DATA.is_dir():
        pytest.skip(f"real test data not found at {SHARED_DATA} (set PIXVOX_SHARED_DATA to its path)")
    from pixvox.prep import sequence as rgbd_sequence

    frames = tmp_path_factory.mktemp("scannet0378") / "frames"
    rgbd_sequence.export_sequence(SHARED_DATA / "scannet_scene0378_00", frames / "scene0378", max_frames=30)
    return frames


@pytest.mark.slow
@pytest.mark.parametrize("name", list(CONFIGS))
def test_objective_config_runs_on_the_real_scannet_sequence(name, scannet_frames, tmp_path):
    from pixvox.prep import fusion as make_fusions

    config = str(REPO / f"configs/pretrain/{name}.yaml")
    cfg = load_config(PretrainConfig, config)
    assert [t.name for t in cfg.loss.terms] == list(CONFIGS[name])
    F = cfg.data.frames_per_sample or 1
    fusions = tmp_path / "fusions"
    make_fusions.make_fusions(
        scannet_frames, fusions, voxel_size=0.1, frames_per_sample=F, depth_max=6.0, image_size=(60, 80),
        progress=False,
    )  # fmt: skip
    assert FusionIndex.load(fusions).frames_per_sample == F
    summary = main(
        [
            config,
            f"data.root={fusions}",
            "data.voxel_size=0.1",
            "data.holdout_every=3",
            f"experiment.output_root={tmp_path}",
            "student.name=Res16UNet14T",
            "teacher.fpn_channels=16",
            "loss.embed_dim=16",
            *(["loss.terms.ppkt.num_pairs=64"] if "ppkt" in CONFIGS[name] else []),
            *(["loss.terms.masked_2d.block_size=0.2"] if "masked_2d" in CONFIGS[name] else []),
            "train.max_steps=2",
            "train.batch_size=2",
            "train.num_workers=0",
            "train.log_every=1",
            "train.checkpoint_every=2",
            "logging.wandb=disabled",
            "logging.progress_bar=false",
            "--resume",
            "none",
        ]
    )
    rows = [r for r in read_metrics(tmp_path / name / "metrics.jsonl") if "loss" in r]
    assert [r["step"] for r in rows] == [1, 2] and summary["steps"] == 2
    for r in rows:
        assert math.isfinite(r["loss"])
        assert r["loss"] == pytest.approx(sum(r[f"loss_{t}"] for t in CONFIGS[name]), rel=1e-5)
        if "ppkt" in CONFIGS[name]:
            assert r["pairs_ppkt"] == 64
        if "masked_2d" in CONFIGS[name]:
            assert r["pairs_masked_2d"] >= 2 and abs(r["mask_ratio_masked_2d"] - 0.6) < 0.15
    assert "eval_acc" in summary
