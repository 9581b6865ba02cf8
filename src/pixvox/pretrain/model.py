"""The networks trained together in pretraining: the sparse 3D student and the 2D teacher."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from pixvox.config.pretrain import PretrainConfig
from pixvox.models import build_student, build_teacher
from pixvox.objectives import needs_teacher, objective_class
from pixvox.sparse import features_in_input_order, sparse_tensor

STUDENT_PREFIX = "student."


class PretrainNet(nn.Module):
    """Student (Res16UNet with a D-dim ``final`` layer) and, when an objective needs it (PPKT), the
    teacher (frozen backbone, trainable FPN + upsampling projection to D dims at pixel resolution).

    ``forward(batch)`` returns ``voxel_feats`` ``[ΣVa, D]`` in the order of ``batch["coords"]`` (when a
    term reads it), ``pixel_feats`` ``[ΣF, D, H, W]`` (PPKT), ``voxel_feats2`` (second view,
    PointContrast) and what each term's own module returns (``objective_modules[name]``, e.g. the
    mask token and decoder of ``masked_2d``). The teacher reuses ``batch["teacher_stages"]`` (its
    frozen backbone's output) where a term's ``prepare`` computed them.
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
                linear_stage=cfg.teacher.linear_stage,
            )
            if needs_teacher(cfg)
            else None
        )
        classes = [(t, objective_class(t.name)) for t in cfg.loss.terms]
        self.clean_student = any(cls.uses_student for _, cls in classes)
        self.pixel_embeddings = any(cls.needs_teacher and cls.uses_teacher_head for _, cls in classes)
        if self.teacher is not None and not self.pixel_embeddings:
            # nothing reads the trained embeddings: freeze the FPN, projection and head (no optimizer
            # state, no checkpoint entry, no parameter DDP would wait for)
            for part in (self.teacher.fpn, self.teacher.projection, self.teacher.head):
                if part is not None:  # head="linear" has no FPN or projection
                    part.requires_grad_(False)
        self.objective_modules = nn.ModuleDict()
        for term, cls in classes:
            module = cls.build_module(term, cfg, self.teacher)
            if module is not None:
                self.objective_modules[term.name] = module

    def student_features(self, feats: torch.Tensor, coords: torch.Tensor) -> torch.Tensor:
        """``[N, D]`` student features, row ``i`` for voxel ``coords[i]`` (``coords``: ``[N, 4]`` int32)."""
        x = sparse_tensor(feats, coords)
        # MinkowskiEngine's rows follow its coordinate map, not ``coords`` (on CUDA the map orders them
        # by hash): map them back explicitly, since pixel matches index rows of ``coords``.
        return features_in_input_order(self.student(x), x)

    def forward(self, batch: dict[str, Any]) -> dict[str, torch.Tensor]:
        out: dict[str, torch.Tensor] = {}
        if self.clean_student:
            out["voxel_feats"] = self.student_features(batch["feats"], batch["coords"])
        if "coords2" in batch:
            out["voxel_feats2"] = self.student_features(batch["feats2"], batch["coords2"])
        if self.teacher is not None and self.pixel_embeddings:
            out["pixel_feats"] = self.teacher(batch["images"], stages=batch.get("teacher_stages"))
        for module in self.objective_modules.values():
            out.update(module(self, batch))
        return out

    def checkpoint_state(self) -> dict[str, torch.Tensor]:
        """Everything but the frozen teacher backbone (restored from its own weights)."""
        frozen = {n for n, p in self.named_parameters() if not p.requires_grad}
        return {k: v for k, v in self.state_dict().items() if k not in frozen and ".backbone." not in f".{k}"}

    def student_state(self) -> dict[str, torch.Tensor]:
        return {
            k[len(STUDENT_PREFIX) :]: v for k, v in self.state_dict().items() if k.startswith(STUDENT_PREFIX)
        }
