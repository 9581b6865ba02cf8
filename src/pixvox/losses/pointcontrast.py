"""PointContrast's PointInfoNCE (Xie et al. 2020): 3D-to-3D contrast between two views."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from pixvox.losses.info_nce import InfoNCEResult, info_nce


class PointInfoNCE(nn.Module):
    """InfoNCE between the student features of the same world voxel seen in two augmented views."""

    def __init__(self, temperature: float = 0.4) -> None:
        super().__init__()
        if temperature <= 0:
            raise ValueError(f"temperature must be > 0, got {temperature}")
        self.temperature = temperature

    def forward(
        self,
        feats1: torch.Tensor,
        feats2: torch.Tensor,
        index1: torch.Tensor,
        index2: torch.Tensor,
        gather: bool = True,
    ) -> InfoNCEResult:
        """``feats{1,2}``: ``[V_k, D]`` student features of each view; ``index{1,2}``: ``[n]`` matched rows."""
        q = F.normalize(feats1[index1], dim=1)
        k = F.normalize(feats2[index2], dim=1)
        return info_nce(q, k, self.temperature, gather=gather)
