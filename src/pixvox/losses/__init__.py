"""Pretraining objectives: PPKT's pixel-to-voxel InfoNCE and PointContrast's PointInfoNCE."""

from pixvox.losses.info_nce import InfoNCEResult, info_nce
from pixvox.losses.pair_sampling import (
    PixelVoxelPairs,
    select_matched_pairs,
    select_pixel_pairs,
    select_point_pairs,
    select_voxel_pairs,
)
from pixvox.losses.pointcontrast import PointInfoNCE
from pixvox.losses.ppkt import PixelToVoxelInfoNCE

__all__ = [
    "InfoNCEResult",
    "info_nce",
    "PixelVoxelPairs",
    "select_matched_pairs",
    "select_pixel_pairs",
    "select_point_pairs",
    "select_voxel_pairs",
    "PixelToVoxelInfoNCE",
    "PointInfoNCE",
]
