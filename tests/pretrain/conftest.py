"""Tiny prepared datasets shared by the pretraining tests (made once per session)."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def tiny_fusions(tmp_path_factory) -> Path:
    """A synthetic dataset: 2 scenes x 6 frames of 60x80 pixels, fused one frame per sample at 10 cm."""
    from pixvox.prep import fusion as make_fusions
    from pixvox.prep import synthetic

    base = tmp_path_factory.mktemp("synthetic")
    synthetic.generate(base, num_scenes=2, frames_per_scene=6, seed=3, image_size=(60, 80), progress=False)
    root = base / "fusions"
    make_fusions.make_fusions(base / "frames", root, voxel_size=0.1, frames_per_sample=1, progress=False)
    return root


def tiny_overrides(root: Path, out: Path, name: str, **extra) -> list[str]:
    """Overrides turning the Quickstart config into a seconds-long CPU run on ``root``."""
    base = {
        "experiment.name": name,
        "experiment.output_root": str(out),
        "data.root": str(root),
        "data.synthetic.enabled": "false",
        "data.voxel_size": "0.1",
        "data.image_size": "[48, 64]",
        "data.holdout_every": "0",
        "student.name": "Res16UNet14S",
        "teacher.fpn_channels": "16",
        "loss.embed_dim": "16",
        "loss.num_pairs": "64",
        "train.max_steps": "4",
        "train.batch_size": "4",
        "train.num_workers": "0",
        "train.log_every": "1",
        "train.checkpoint_every": "2",
        "logging.wandb": "disabled",
        "logging.progress_bar": "false",
    }
    base.update({k: str(v) for k, v in extra.items()})
    return [f"{k}={v}" for k, v in base.items()]


@pytest.fixture(scope="session")
def tiny_fusions_f3(tiny_fusions) -> Path:
    """The frames of :func:`tiny_fusions` fused 3 neighbouring frames per sample (2 scenes x 2 samples)."""
    from pixvox.prep import fusion as make_fusions

    root = tiny_fusions.parent / "fusions_f3"
    make_fusions.make_fusions(
        tiny_fusions.parent / "frames", root, voxel_size=0.1, frames_per_sample=3, progress=False
    )
    return root
