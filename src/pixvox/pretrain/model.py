"""The networks trained together in pretraining: the sparse 3D student and the 2D teacher."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from pixvox.config.pretrain import PretrainConfig
from pixvox.models import build_student, build_teacher
from pixvox.objectives import needs_teacher
from pixvox.sparse import features_in_input_order, sparse_tensor

STUDENT_PREFIX = "student."


class PretrainNet(nn.Module):
    """Student (Res16UNet with a D-dim ``final`` layer) and, when an objective needs it (PPKT), the
    teacher (frozen backbone, trainable FPN + upsampling projection to D dims at pixel resolution).

    ``forward(batch)`` returns ``voxel_feats`` ``[ΣVa, D]`` in the order of ``batch["coords"]``,
    ``pixel_feats`` ``[ΣF, D, H, W]`` (PPKT) and ``voxel_feats2`` (second view, PointContrast).
    """

    def __init__(self, cfg: PretrainConfig) -> None:
        super().__init__()
        s = cfg.student
        kwargs: dict[str, Any] = {"bn_momentum": s.bn_momentum, "conv1_kernel_size": s.conv1_kernel_size}
        if s.planes is not None:
            kwargs["planes"] = s.planes
        self.student = build_student(s.name, s.in_channels, cfg.loss.embed_dim, **kwargs)
        self.teacher = (
            build_teacher(
                cfg.teacher.backbone,
                weights=cfg.teacher.weights,
                out_dim=cfg.loss.embed_dim,
                fpn_channels=cfg.teacher.fpn_channels,
                head=cfg.teacher.head,
            )
            if needs_teacher(cfg)
            else None
        )

    def student_features(self, feats: torch.Tensor, coords: torch.Tensor) -> torch.Tensor:
        """``[N, D]`` student features, row ``i`` for voxel ``coords[i]`` (``coords``: ``[N, 4]`` int32)."""
        x = sparse_tensor(feats, coords)
        # MinkowskiEngine's rows follow its coordinate map, not ``coords`` (on CUDA the map orders them
        # by hash): map them back explicitly, since pixel matches index rows of ``coords``.
        return features_in_input_order(self.student(x), x)

    def forward(self, batch: dict[str, Any]) -> dict[str, torch.Tensor]:
        out = {"voxel_feats": self.student_features(batch["feats"], batch["coords"])}
        if "coords2" in batch:
            out["voxel_feats2"] = self.student_features(batch["feats2"], batch["coords2"])
        if self.teacher is not None:
            out["pixel_feats"] = self.teacher(batch["images"])
        return out

    def checkpoint_state(self) -> dict[str, torch.Tensor]:
        """Everything but the frozen teacher backbone (restored from its own weights)."""
        frozen = {n for n, p in self.named_parameters() if not p.requires_grad}
        return {k: v for k, v in self.state_dict().items() if k not in frozen and ".backbone." not in f".{k}"}

    def student_state(self) -> dict[str, torch.Tensor]:
        return {
            k[len(STUDENT_PREFIX) :]: v for k, v in self.state_dict().items() if k.startswith(STUDENT_PREFIX)
        }
