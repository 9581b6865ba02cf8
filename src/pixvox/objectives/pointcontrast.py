"""The ``pointcontrast`` objective: PointInfoNCE between two 3D views of the same world voxels."""

from __future__ import annotations

from typing import Any

import torch

from pixvox.config.objectives import PointContrastTerm
from pixvox.config.pretrain import PretrainConfig
from pixvox.losses import PointInfoNCE, select_point_pairs
from pixvox.objectives.base import Objective, ObjectiveResult

SEED_STREAM = 0x2545F491  # its pairs are drawn apart from PPKT's when both run


class PointContrastObjective(Objective):
    """Pairs: stored voxels seen in both augmented views; loss: InfoNCE over their student features."""

    term_type = PointContrastTerm
    inputs = frozenset({"view2"})
    term: PointContrastTerm

    def __init__(self, term: PointContrastTerm, cfg: PretrainConfig) -> None:
        super().__init__(term, cfg)
        self.loss_fn = PointInfoNCE(term.temperature)
        self.quota = max(1, term.num_pairs // cfg.train.batch_size)

    def select_pairs(
        self, batch: dict[str, Any], out: dict[str, torch.Tensor], seeds: list[int]
    ) -> tuple[torch.Tensor, torch.Tensor]:
        return select_point_pairs(
            batch["orig_to_aug"],
            batch["orig_to_aug2"],
            batch["orig_offsets"],
            [s ^ SEED_STREAM for s in seeds],
            self.quota,
        )

    def score(
        self, out: dict[str, torch.Tensor], pairs: tuple[torch.Tensor, torch.Tensor], gather: bool = True
    ) -> ObjectiveResult:
        i1, i2 = pairs
        res = self.loss_fn(out["voxel_feats"], out["voxel_feats2"], i1, i2, gather=gather)
        metrics = {
            "loss": res.loss_value,
            "acc": res.accuracy,
            "chance": 1.0 / res.num_pairs,
            "pairs": float(res.num_pairs),
        }
        return ObjectiveResult(res.loss, metrics, i1.numel())
