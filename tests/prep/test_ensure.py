"""Data prepared on first use: ``data.sequence`` (an RGB-D sequence) for pretraining,
labeled clouds for fine-tuning, and the errors that say how to prepare them."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from pixvox.config import ConfigError, FinetuneConfig, load_config
from pixvox.io.fusions import FusionIndex
from pixvox.prep.ensure import ensure_segmentation_data, prepare_from_pretrain_args
from pixvox.prep.sequence import read_trajectory_log

REPO = Path(__file__).resolve().parents[2]
ICL_CONFIG = str(REPO / "configs/pretrain/icl_livingroom.yaml")
FINETUNE_CONFIG = str(REPO / "configs/finetune/synthetic.yaml")


@pytest.mark.slow
def test_icl_sequence_is_exported_and_fused_on_first_use(shared_data, tmp_path):
    src = shared_data / "icl_livingroom1"
    root = tmp_path / "icl" / "fusions"
    args = [ICL_CONFIG, f"data.root={root}", f"data.sequence={src}"]
    prepare_from_pretrain_args(args)
    index = FusionIndex.load(root)
    poses = read_trajectory_log(src / "trajectory.log")
    assert len(index) == len(poses) == 211
    for i in (0, 105, 210):  # one frame per sample, in sequence order, with the sequence's own pose
        s = index.load_sample(i)
        assert s.images.shape == (1, 120, 160, 3) and s.depths.shape == (1, 120, 160)
        np.testing.assert_allclose(s.cam_to_world[0], poses[i])
        assert s.voxel_size == pytest.approx(0.05) and s.num_voxels > 1000
        # Intrinsics follow the stored 120x160 images: ICL's 525 px focal length at 640x480, scaled by 1/4.
        np.testing.assert_allclose(s.intrinsics[0][[0, 1], [0, 1]], [525 / 4, 525 / 4], rtol=1e-6)
    mtime = (root / "index.json").stat().st_mtime_ns
    prepare_from_pretrain_args(args)  # already prepared: nothing is redone
    assert (root / "index.json").stat().st_mtime_ns == mtime


def test_missing_sequence_folder_is_a_clear_error(tmp_path):
    missing = tmp_path / "no_such_sequence"
    with pytest.raises(SystemExit, match="data.sequence=.*no_such_sequence.*is not a folder"):
        prepare_from_pretrain_args([ICL_CONFIG, f"data.root={tmp_path / 'f'}", f"data.sequence={missing}"])
    assert not (tmp_path / "f").exists()


def test_sequence_and_synthetic_together_are_refused(tmp_path):
    with pytest.raises(ConfigError, match="data.sequence"):
        prepare_from_pretrain_args([ICL_CONFIG, f"data.root={tmp_path}", "data.synthetic.enabled=true"])


def test_missing_pretraining_data_says_how_to_make_it(tmp_path):
    with pytest.raises(SystemExit, match="(?s)index.json not found.*python -m pixvox.prep fusions"):
        prepare_from_pretrain_args([ICL_CONFIG, f"data.root={tmp_path / 'f'}", "data.sequence=null"])


def test_segmentation_data_missing_says_how_to_make_it(tmp_path):
    cfg = load_config(
        FinetuneConfig, FINETUNE_CONFIG, [f"data.root={tmp_path / 'clouds'}", "data.synthetic.enabled=false"]
    )
    with pytest.raises(FileNotFoundError, match="(?s)index.json not found.*python -m pixvox.prep"):
        ensure_segmentation_data(cfg)
    cfg = load_config(FinetuneConfig, FINETUNE_CONFIG, [f"data.root={tmp_path / 'rooms'}"])
    with pytest.raises(ValueError, match="folder named 'clouds'"):
        ensure_segmentation_data(cfg)
