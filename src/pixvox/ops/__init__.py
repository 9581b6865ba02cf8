"""Batched pixel ↔ voxel operations for pixel-to-voxel transfer (kernels in cuda_ext/, pixvox._ext).

- :class:`VoxelHash`: ``(batch, x, y, z)`` voxel coordinates → row, built once per batch of scenes.
- :func:`backproject`: depth frames → world points and the ``(frame, v, u)`` pixel of each.
- :func:`pixel_to_voxel`: every kept pixel → the index of its scene voxel (-1 if none), with optional
  per-sample 3D augmentation of the scene.
- :func:`scatter_to_voxels` / :func:`gather_from_voxels`: differentiable, deterministic feature
  transfer between pixels and voxels.

The compiled kernels are loaded on first use; :mod:`pixvox.ops.reference` holds the pure-PyTorch
reference used by the tests and benchmarks.
"""

from __future__ import annotations

from pixvox.ops.backproject import BackprojectedPixels, PixelVoxelMatch, backproject, pixel_to_voxel
from pixvox.ops.scatter_gather import REDUCTIONS, VoxelFeatures, gather_from_voxels, scatter_to_voxels
from pixvox.ops.voxel_hash import VoxelHash, check_voxel_coords

__all__ = [
    "REDUCTIONS",
    "BackprojectedPixels",
    "PixelVoxelMatch",
    "VoxelFeatures",
    "VoxelHash",
    "backproject",
    "check_voxel_coords",
    "gather_from_voxels",
    "pixel_to_voxel",
    "scatter_to_voxels",
]
