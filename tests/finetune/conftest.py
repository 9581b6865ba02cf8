"""Helpers for the fine-tuning tests: pretraining-format checkpoints and tiny labeled datasets."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from pixvox.config import StudentConfig, to_dict
from pixvox.engine.checkpoint import save_checkpoint
from pixvox.io.clouds import CloudIndex, LabeledCloud
from pixvox.models import build_student

REPO = Path(__file__).resolve().parents[2]


def make_pretrain_checkpoint(
    run_dir: Path,
    name: str = "Res16UNet14T",
    embed_dim: int = 16,
    seed: int = 0,
    step: int = 10,
    **student_kw,
) -> dict[str, torch.Tensor]:
    """Save a pixvox pretraining checkpoint of a student with random weights and BN statistics (so every
    tensor differs from a fresh initialization); returns the student's state dict."""
    torch.manual_seed(seed)
    cfg = StudentConfig(name=name, **student_kw)
    student = build_student(
        name, cfg.in_channels, embed_dim, conv1_kernel_size=cfg.conv1_kernel_size, bn_momentum=cfg.bn_momentum
    )
    state = student.state_dict()
    with torch.no_grad():
        for k, v in state.items():
            if v.is_floating_point():
                v.copy_(torch.rand_like(v) + 0.5 if "running_var" in k else torch.randn_like(v))
    save_checkpoint(run_dir / "checkpoints", step, {
        "format": "pixvox.checkpoint/1", "step": step, "model": {}, "student": state, "student_name": name,
        "config": {"student": to_dict(cfg)},
    })  # fmt: skip
    return state


def room_cloud(rng: np.random.Generator, n: int = 4000) -> LabeledCloud:
    """A box room: floor (class 0), four walls (1) and a table top (2), colored by class with noise."""
    k = n // 6
    floor = np.c_[rng.uniform(0, 4, (k, 2)), np.zeros(k)]
    walls = []
    for axis, at in ((0, 0.0), (0, 4.0), (1, 0.0), (1, 4.0)):
        p = np.c_[rng.uniform(0, 4, k), rng.uniform(0, 2.5, k)]
        walls.append(np.insert(p, axis, at, axis=1))
    table = np.c_[rng.uniform(1.5, 2.5, (k, 2)), np.full(k, 0.75)]
    xyz = np.concatenate([floor, *walls, table]).astype(np.float32)
    labels = np.repeat([0, 1, 1, 1, 1, 2], k).astype(np.int32)
    base = np.array([[150, 110, 70], [220, 220, 210], [60, 40, 30]])
    rgb = np.clip(base[labels] + rng.normal(0, 12, (len(labels), 3)), 0, 255).astype(np.uint8)
    labels[rng.random(len(labels)) < 0.1] = -1
    return LabeledCloud(xyz=xyz, rgb=rgb, labels=labels)


@pytest.fixture(scope="session")
def tiny_rooms(tmp_path_factory) -> Path:
    """Three labeled box rooms (room0, room1 train; room2 val), classes floor / wall / table."""
    root = tmp_path_factory.mktemp("rooms") / "clouds"
    rng = np.random.default_rng(7)
    index = CloudIndex.open_or_create(root, ["floor", "wall", "table"])
    for i in range(3):
        index.add(f"room{i}", room_cloud(rng))
    index.write()
    return root
