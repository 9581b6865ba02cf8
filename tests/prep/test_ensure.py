"""Data prepared on first use: ``data.sequence`` (an RGB-D sequence, or a folder of them) for pretraining,
labeled clouds for fine-tuning, and the errors that say how to prepare them."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from pixvox.config import ConfigError, FinetuneConfig, PretrainConfig, load_config
from pixvox.io.frames import format_matrix
from pixvox.io.fusions import FusionIndex
from pixvox.prep.ensure import ensure_pretrain_data, ensure_segmentation_data, prepare_from_pretrain_args
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


def test_a_folder_of_sequences_is_exported_and_fused(tmp_path, seed):
    # data.sequence may hold several sequences (e.g. sun3d_fragments/): each is exported, all are fused.
    rng = np.random.default_rng(seed)
    seqs = tmp_path / "seqs"
    for name in ("seq-01", "seq-02"):
        d = seqs / name
        d.mkdir(parents=True)
        (d / "camera-intrinsics.txt").write_text("40 0 23.5\n0 40 17.5\n0 0 1\n")
        for i in range(3):
            stem = d / f"frame-{i:06d}"
            Image.fromarray(rng.integers(0, 256, (36, 48, 3)).astype(np.uint8)).save(f"{stem}.color.png")
            Image.fromarray(rng.integers(500, 3000, (36, 48)).astype(np.uint16)).save(f"{stem}.depth.png")
            (d / f"frame-{i:06d}.pose.txt").write_text(format_matrix(np.eye(4)))
    cfg = load_config(
        PretrainConfig, ICL_CONFIG, [f"data.root={tmp_path / 'out' / 'fusions'}", f"data.sequence={seqs}"]
    )
    root = ensure_pretrain_data(cfg)
    index = FusionIndex.load(root)
    assert [s.name for s in index.samples] == [f"seq-0{k}_{i:06d}" for k in (1, 2) for i in range(3)]
    assert sorted(p.name for p in (tmp_path / "out" / "frames").iterdir()) == ["seq-01", "seq-02"]
    # data.frames_per_sample F > 1: F neighbouring frames per sample, data.frame_stride apart
    multi = load_config(
        PretrainConfig,
        ICL_CONFIG,
        [
            f"data.root={tmp_path / 'out' / 'fusions_f2'}",
            f"data.sequence={seqs}",
            "data.frames_per_sample=2",
            "data.frame_stride=1",
        ],
    )
    index = FusionIndex.load(ensure_pretrain_data(multi))
    assert index.frames_per_sample == 2
    assert [s.name for s in index.samples] == [f"seq-0{k}_{i:06d}" for k in (1, 2) for i in range(2)]
    assert all(s.num_frames == 2 for s in index.samples)


def test_segmentation_data_missing_says_how_to_make_it(tmp_path):
    cfg = load_config(
        FinetuneConfig, FINETUNE_CONFIG, [f"data.root={tmp_path / 'clouds'}", "data.synthetic.enabled=false"]
    )
    with pytest.raises(FileNotFoundError, match="(?s)index.json not found.*Pointcept.*python -m pixvox.prep"):
        ensure_segmentation_data(cfg)
    cfg = load_config(FinetuneConfig, FINETUNE_CONFIG, [f"data.root={tmp_path / 'rooms'}"])
    with pytest.raises(ValueError, match="folder named 'clouds'"):
        ensure_segmentation_data(cfg)
