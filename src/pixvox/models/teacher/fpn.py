"""Trainable parts of the teacher: a Feature Pyramid Network and the upsampling projection.

The frozen backbone gives C2..C5 at strides 4, 8, 16, 32; :class:`FeaturePyramid` merges them
top-down into P2 (stride 4), and :class:`UpsamplingProjection` lifts P2 to pixel resolution with
learned sub-pixel convolutions (conv → pixel shuffle, twice for stride 4). Feature ``i`` at stride
``s`` is written to pixels ``s*i … s*i+s-1``: no interpolation is involved, and the sub-stride offset
of the backbone's receptive-field centres (under ``s/2`` pixels) is absorbed by the learned
convolutions.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["FeaturePyramid", "UpsamplingProjection"]


class FeaturePyramid(nn.Module):
    """Top-down FPN (Lin et al. 2017) returning the finest level.

    Args:
        in_channels: channels of C2..C5 (finest first).
        channels: width of every pyramid level.

    ``forward([C2, ..., C5])`` → P2 ``[B, channels, h2, w2]`` at the resolution of C2. Coarser maps
    are resized to the exact size of the finer one (nearest), so odd image sizes, where a stride-2
    stage rounds up, need no cropping.
    """

    def __init__(self, in_channels: tuple[int, ...] | list[int], channels: int = 128):
        super().__init__()
        self.lateral = nn.ModuleList(nn.Conv2d(c, channels, 1) for c in in_channels)
        self.smooth = nn.Sequential(
            nn.Conv2d(channels, channels, 3, padding=1, bias=False),
            nn.BatchNorm2d(channels),
            nn.ReLU(inplace=True),
        )
        self.out_channels = channels

    def forward(self, stages: list[torch.Tensor]) -> torch.Tensor:
        if len(stages) != len(self.lateral):
            raise ValueError(f"expected {len(self.lateral)} backbone stages, got {len(stages)}")
        top = self.lateral[-1](stages[-1])
        for lateral, c in zip(reversed(self.lateral[:-1]), reversed(stages[:-1])):
            top = lateral(c) + F.interpolate(top, size=c.shape[-2:], mode="nearest")
        return self.smooth(top)


class UpsamplingProjection(nn.Module):
    """Learned upsampling of a stride-``scale`` map to pixel resolution.

    Each ×2 step is ``conv3x3(c_in → 4·c_out) → PixelShuffle(2) → BN → ReLU`` (sub-pixel convolution;
    free of the checkerboard pattern of transposed convolutions). ``forward(x, size)`` returns
    ``[B, out_channels, H, W]`` with ``(H, W) = size``: the upsampled map covers ``scale × (h, w) >=
    (H, W)`` pixels and is cropped at the bottom/right, where the backbone rounded the size up.
    """

    def __init__(self, in_channels: int, out_channels: int = 64, scale: int = 4):
        super().__init__()
        steps = int(round(math.log2(scale)))
        if 2**steps != scale:
            raise ValueError(f"scale must be a power of two, got {scale}")
        layers: list[nn.Module] = []
        c = in_channels
        for _ in range(steps):
            layers += [
                nn.Conv2d(c, 4 * out_channels, 3, padding=1, bias=False),
                nn.PixelShuffle(2),
                nn.BatchNorm2d(out_channels),
                nn.ReLU(inplace=True),
            ]
            c = out_channels
        self.layers = nn.Sequential(*layers)
        self.scale = scale
        self.out_channels = out_channels

    def forward(self, x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
        H, W = size
        if x.shape[-2] * self.scale < H or x.shape[-1] * self.scale < W:
            raise ValueError(
                f"a {tuple(x.shape[-2:])} map at stride {self.scale} cannot cover a {H}x{W} image"
            )
        return self.layers(x)[..., :H, :W]
