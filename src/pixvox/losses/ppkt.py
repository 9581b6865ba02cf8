"""PPKT: contrastive pixel-to-voxel knowledge transfer (Liu et al. 2021, arXiv 2104.04687)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from pixvox.losses.info_nce import InfoNCEResult, info_nce
from pixvox.ops import gather_from_voxels, scatter_to_voxels


class PixelToVoxelInfoNCE(nn.Module):
    """InfoNCE between student voxel features (queries) and frozen-teacher pixel features (keys).

    For each pair, the key is the mean of the teacher features of the pixels assigned to it
    (scatter-mean; one pixel per pair in pixel-level mode), re-normalized; the query is the student
    feature of the pair's voxel (gather). Logits are the N×N cosine similarities over τ.
    """

    def __init__(self, temperature: float = 0.04, symmetric: bool = False) -> None:
        super().__init__()
        if temperature <= 0:
            raise ValueError(f"temperature must be > 0, got {temperature}")
        self.temperature = temperature
        self.symmetric = symmetric

    def forward(
        self,
        voxel_feats: torch.Tensor,
        pixel_feats: torch.Tensor,
        pair_voxel: torch.Tensor,
        pixel_pair: torch.Tensor,
        gather: bool = True,
    ) -> InfoNCEResult:
        """
        Args:
            voxel_feats: ``[V, D]`` student features of all voxels of the local batch.
            pixel_feats: ``[m, D]`` teacher features of the pixels feeding the pairs.
            pair_voxel: ``[n]`` int64 voxel of each pair.
            pixel_pair: ``[m]`` int64 pair each pixel belongs to (every pair has at least one pixel).
            gather: contrast against the pairs of all processes (see :func:`info_nce`).
        """
        n = pair_voxel.shape[0]
        query = F.normalize(gather_from_voxels(voxel_feats, pair_voxel), dim=1)
        key_sum, counts = scatter_to_voxels(pixel_feats, pixel_pair, n, reduce="mean")
        if n and int(counts.min()) == 0:
            raise ValueError("every pair needs at least one pixel; got a pair with none")
        key = F.normalize(key_sum, dim=1)
        return info_nce(query, key, self.temperature, symmetric=self.symmetric, gather=gather)
