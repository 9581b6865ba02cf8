"""Projection heads mapping 3D and 2D features into the shared D-dimensional embedding space.

Both end in an L2 normalization, so pixel and voxel embeddings are unit vectors and their dot
product is a cosine similarity (what the InfoNCE loss expects). D = 64 by default; PPKT uses 128.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from pixvox.sparse import ME

__all__ = ["ProjectionHead3D", "ProjectionHead2D", "l2_normalize"]

#: floor on the feature norm before dividing, so an all-zero feature maps to 0 instead of NaN
NORM_EPS = 1e-6


def l2_normalize(x: torch.Tensor, dim: int = 1) -> torch.Tensor:
    """``x / max(||x||_2, 1e-6)`` along ``dim``."""
    return F.normalize(x, p=2.0, dim=dim, eps=NORM_EPS)


class ProjectionHead3D(nn.Module):
    """Sparse 1x1x1 convolution to ``out_dim`` channels, then per-voxel L2 normalization.

    ``forward(ME.SparseTensor [N, in_channels])`` → ``ME.SparseTensor [N, out_dim]`` with the same
    coordinates (same coordinate map), each row of unit length. Parameters: ``proj.kernel``,
    ``proj.bias``.
    """

    def __init__(self, in_channels: int, out_dim: int = 64, normalize: bool = True):
        super().__init__()
        self.proj = ME.MinkowskiConvolution(in_channels, out_dim, kernel_size=1, bias=True, dimension=3)
        self.normalize = normalize
        self.out_dim = out_dim

    def forward(self, x: ME.SparseTensor) -> ME.SparseTensor:
        y = self.proj(x)
        if not self.normalize:
            return y
        return ME.SparseTensor(
            l2_normalize(y.F),
            coordinate_map_key=y.coordinate_map_key,
            coordinate_manager=y.coordinate_manager,
        )


class ProjectionHead2D(nn.Module):
    """1x1 convolution to ``out_dim`` channels, then per-pixel L2 normalization.

    ``forward([B, in_channels, H, W])`` → ``[B, out_dim, H, W]``, unit length along dim 1.
    Parameters: ``proj.weight``, ``proj.bias``.
    """

    def __init__(self, in_channels: int, out_dim: int = 64, normalize: bool = True):
        super().__init__()
        self.proj = nn.Conv2d(in_channels, out_dim, 1)
        self.normalize = normalize
        self.out_dim = out_dim

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.proj(x)
        return l2_normalize(y, dim=1) if self.normalize else y
