"""The ``pointcontrast`` objective: PointInfoNCE between two 3D views of the same world voxels.

As published (Xie et al. 2020; ``views: overlap``), view 2 is another fusion of the same scene whose
voxel overlap with view 1 is at least ``min_overlap`` (pairs stored by pixvox.prep.fusion); each view
has its own 3D augmentation and colour jitter. The stored voxels of both views share the scene's
world frame, so the same world voxel is found through a :class:`pixvox.ops.VoxelHash` of view 1's
stored voxels, then followed to its augmented voxel in each view. ``views: augment`` pairs a fusion
with a second augmentation of itself (the baseline of 100% overlap).
"""

from __future__ import annotations

from typing import Any

import torch

from pixvox.config.objectives import PointContrastTerm
from pixvox.config.pretrain import PretrainConfig
from pixvox.engine import timing
from pixvox.losses import PointInfoNCE, select_matched_pairs
from pixvox.objectives.base import Objective, ObjectiveResult
from pixvox.ops import VoxelHash

SEED_STREAM = 0x2545F491  # its pairs are drawn apart from PPKT's when both run


@timing.timed("matching")
def match_views(batch: dict[str, Any]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Stored voxels present in both views, in the world frame.

    Returns ``(row1, row2, sample)`` int64 ``[K]``: rows of ``orig_coords`` and ``orig_coords2``
    (batched ``(b, x, y, z)``) holding the same voxel, and their sample, ordered by ``row2``.
    """
    row1 = VoxelHash(batch["orig_coords"]).lookup(batch["orig_coords2"])
    row2 = (row1 >= 0).nonzero().squeeze(1)
    return row1[row2], row2, batch["orig_coords2"][row2, 0].long()


class PointContrastObjective(Objective):
    """Pairs: world voxels seen in both views; loss: InfoNCE over their student features."""

    term_type = PointContrastTerm
    term: PointContrastTerm

    def __init__(self, term: PointContrastTerm, cfg: PretrainConfig) -> None:
        super().__init__(term, cfg)
        self.loss_fn = PointInfoNCE(term.temperature)
        self.quota = max(1, term.num_pairs // cfg.train.batch_size)

    @classmethod
    def required_inputs(cls, term: PointContrastTerm) -> frozenset[str]:
        return frozenset({"partner" if term.views == "overlap" else "view2"})

    @classmethod
    def dataset_options(cls, term: PointContrastTerm) -> dict[str, Any]:
        return {"partner_min_overlap": term.min_overlap} if term.views == "overlap" else {}

    def select_pairs(
        self, batch: dict[str, Any], out: dict[str, torch.Tensor], seeds: list[int]
    ) -> tuple[torch.Tensor, torch.Tensor]:
        row1, row2, sample = match_views(batch)
        return select_matched_pairs(
            batch["orig_to_aug"][row1],
            batch["orig_to_aug2"][row2],
            sample,
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
