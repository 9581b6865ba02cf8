"""Frozen per-point features of a student: one forward pass per room, in eval mode.

Each room is voxelized at the pretraining voxel size (the student's input: mean RGB in [-0.5, 0.5],
or a constant 1 for ``student.input=ones``), the student's output (``loss.embed_dim`` channels, the
space the pretraining objective shaped) is read per voxel, and every point takes its voxel's row.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from pixvox.config import PretrainConfig
from pixvox.engine.checkpoint import load_checkpoint
from pixvox.errors import CheckpointMismatchError
from pixvox.finetune.model import resolve_pretrain_checkpoint
from pixvox.geometry import voxelize
from pixvox.io.clouds import LabeledCloud
from pixvox.models import build_student
from pixvox.sparse import batched_coordinates, features_in_input_order, sparse_tensor


@dataclass
class RoomFeatures:
    """``feats`` float32 ``[V, D]`` per voxel; ``inverse`` int64 ``[N]`` each point's voxel;
    ``labels`` int64 ``[N]`` per point (-1 ignored)."""

    feats: np.ndarray
    inverse: np.ndarray
    labels: np.ndarray


def build_arm_student(cfg: PretrainConfig, run_dir: Path | None) -> nn.Module:
    """The student of a pretraining run (its newest checkpoint), or, with ``run_dir=None``, the
    student initialised from ``experiment.seed`` as the pretraining job would; in eval mode."""
    s = cfg.student
    kwargs: dict = {"bn_momentum": s.bn_momentum, "conv1_kernel_size": s.conv1_kernel_size}
    if s.planes is not None:
        kwargs["planes"] = s.planes
    torch.manual_seed(cfg.experiment.seed)  # what TrainingJob.run seeds before building the network
    student = build_student(s.name, s.in_channels, cfg.loss.embed_dim, **kwargs)
    if run_dir is not None:
        path = resolve_pretrain_checkpoint(run_dir)
        state = load_checkpoint(path).get("student")
        if not isinstance(state, dict):
            raise CheckpointMismatchError(f"{path}: no 'student' weights inside")
        missing, unexpected = student.load_state_dict(state, strict=False)
        if missing or unexpected:
            raise CheckpointMismatchError(
                f"{path}: the student does not fit {s.name}: missing {missing[:5]}, unexpected {unexpected[:5]}"
            )
    return student.eval()


def voxel_input(cloud: LabeledCloud, voxel_size: float, input_kind: str) -> tuple[np.ndarray, ...]:
    """``(coords int32 [V, 3], feats float32 [V, C], inverse int64 [N])`` of a room."""
    coords, inverse, mean_rgb = voxelize(cloud.xyz, voxel_size, cloud.rgb.astype(np.float32))
    if input_kind == "ones":
        feats = np.ones((coords.shape[0], 1), np.float32)
    else:
        feats = (mean_rgb / 255.0 - 0.5).astype(np.float32)
    return coords, feats, inverse


@torch.no_grad()
def room_features(student: nn.Module, cloud: LabeledCloud, cfg: PretrainConfig) -> RoomFeatures:
    """The frozen features of one room (see the module doc)."""
    coords, feats, inverse = voxel_input(cloud, cfg.data.voxel_size, cfg.student.input)
    c = batched_coordinates([torch.from_numpy(coords)])
    x = sparse_tensor(torch.from_numpy(feats), c)
    out = features_in_input_order(student(x), x)
    return RoomFeatures(out.float().numpy(), inverse, cloud.labels.astype(np.int64))
