"""The ``ppkt`` objective: student voxels against frozen 2D-teacher pixels (Liu et al. 2021)."""

from __future__ import annotations

from typing import Any, NamedTuple

import torch

from pixvox.config.objectives import PPKTTerm
from pixvox.config.pretrain import PretrainConfig, PretrainDataConfig
from pixvox.engine import timing
from pixvox.losses import PixelToVoxelInfoNCE, PixelVoxelPairs, select_pixel_pairs, select_voxel_pairs
from pixvox.objectives.base import Objective, ObjectiveResult
from pixvox.ops import VoxelHash, pixel_to_voxel


@timing.timed("matching")
def match_pixels(
    batch: dict[str, Any], voxel_size: float, depth_min: float, depth_max: float
) -> dict[str, torch.Tensor]:
    """Pixels of every frame matched to the student's (augmented) voxels.

    Matching happens in the fusion's world frame against the stored voxels, then follows each stored
    voxel to its augmented voxel (``orig_to_aug``), so it is exact under any 3D augmentation.
    Returns ``frame``, ``v``, ``u`` (int64 [P]) and ``voxel`` (int64 [P], index into ``coords``) of
    the matched pixels, and ``sample`` (int64 [P]).
    """
    table = VoxelHash(batch["orig_coords"])
    m = pixel_to_voxel(
        batch["depths"],
        batch["intrinsics"],
        batch["cam_to_world"],
        voxel_size,
        table,
        frame_batch=batch["frame_sample"],
        depth_min=depth_min,
        depth_max=depth_max,
    )
    keep = m.voxel_index >= 0
    bvu = m.pixel_bvu[keep]
    frame = bvu[:, 0]
    return {
        "frame": frame,
        "v": bvu[:, 1],
        "u": bvu[:, 2],
        "voxel": batch["orig_to_aug"][m.voxel_index[keep]],
        "sample": batch["frame_sample"][frame],
    }


def pixel_matches(batch: dict[str, Any], data: PretrainDataConfig) -> dict[str, torch.Tensor]:
    """:func:`match_pixels` of ``batch``, computed once per batch (kept under ``pixel_matches``) and
    shared by every objective that matches pixels."""
    if "pixel_matches" not in batch:
        batch["pixel_matches"] = match_pixels(batch, data.voxel_size, data.depth_min, data.depth_max)
    return batch["pixel_matches"]


class PPKTPairs(NamedTuple):
    pairs: PixelVoxelPairs
    pixel_feats: torch.Tensor  #: [m, D] teacher features of the pixels feeding the pairs
    matched_pixels: int  #: pixels of this process that landed in a voxel


class PPKTObjective(Objective):
    """InfoNCE between student voxel features and (voxel-averaged or single) teacher pixel features."""

    term_type = PPKTTerm
    inputs = frozenset({"frames"})
    needs_teacher = True
    term: PPKTTerm

    def __init__(self, term: PPKTTerm, cfg: PretrainConfig) -> None:
        super().__init__(term, cfg)
        self.loss_fn = PixelToVoxelInfoNCE(term.temperature, term.symmetric)
        self.quota = max(1, term.num_pairs // cfg.train.batch_size)  # per sample of the global batch

    def select_pairs(
        self, batch: dict[str, Any], out: dict[str, torch.Tensor], seeds: list[int]
    ) -> PPKTPairs:
        mt = pixel_matches(batch, self.cfg.data)
        if self.term.pixel_level:
            pairs = select_pixel_pairs(mt["voxel"], mt["sample"], seeds, self.quota)
        else:
            pairs = select_voxel_pairs(mt["voxel"], batch["voxel_offsets"], seeds, self.quota)
        sel = pairs.pixel_index
        fmap = out["pixel_feats"]
        pixel_feats = fmap.permute(0, 2, 3, 1)[mt["frame"][sel], mt["v"][sel], mt["u"][sel]]
        return PPKTPairs(pairs, pixel_feats, int(mt["voxel"].numel()))

    def score(self, out: dict[str, torch.Tensor], pairs: PPKTPairs, gather: bool = True) -> ObjectiveResult:
        p = pairs.pairs
        res = self.loss_fn(out["voxel_feats"], pairs.pixel_feats, p.pair_voxel, p.pixel_pair, gather=gather)
        metrics = {
            "loss": res.loss_value,
            "acc": res.accuracy,
            "chance": 1.0 / res.num_pairs,
            "pairs": float(res.num_pairs),
            "matched_pixels": float(pairs.matched_pixels),
        }
        return ObjectiveResult(res.loss, metrics, p.pair_voxel.numel())
