"""Fixtures for the model tests: small random sparse inputs and a voxelized real ScanNet scan."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from pixvox.geometry import voxelize
from pixvox.sparse import ME, batched_coordinates, sparse_tensor


def random_surface_voxels(gen: torch.Generator, n_points: int = 600, extent: int = 24) -> torch.Tensor:
    """Unique int32 voxels ``[V, 3]`` on a few random planes and spheres (surface-like, with neighbours)."""
    pieces = []
    for _ in range(3):
        if torch.rand((), generator=gen) < 0.5:  # plane patch
            origin = torch.rand(3, generator=gen) * extent / 2
            u, v = torch.randn(2, 3, generator=gen)
            st = torch.rand(n_points // 3, 2, generator=gen) * extent / 2
            pts = origin + st[:, :1] * u / u.norm() + st[:, 1:] * v / v.norm()
        else:  # sphere
            centre = extent / 4 + torch.rand(3, generator=gen) * extent / 2
            d = torch.randn(n_points // 3, 3, generator=gen)
            pts = centre + d / d.norm(dim=1, keepdim=True) * (2 + 4 * torch.rand((), generator=gen))
        pieces.append(pts)
    return torch.unique(torch.floor(torch.cat(pieces)).int(), dim=0)


def _make_sparse_input(
    seed: int, in_channels: int = 3, batch: int = 2, n_points: int = 600
) -> ME.SparseTensor:
    """A batch of random surface voxels with uniform random features in [0, 1)."""
    gen = torch.Generator().manual_seed(seed)
    coords = batched_coordinates([random_surface_voxels(gen, n_points) for _ in range(batch)])
    feats = torch.rand(coords.shape[0], in_channels, generator=gen)
    return sparse_tensor(feats, coords)


@pytest.fixture
def make_sparse_input():
    """``make_sparse_input(seed, in_channels=3, batch=2, n_points=600) -> ME.SparseTensor``."""
    return _make_sparse_input


@pytest.fixture
def scannet_voxels(shared_data: Path) -> tuple[torch.Tensor, torch.Tensor]:
    """ScanNet scene0000_00 at 10 cm voxels: ``(coords [V, 3] int32, colors [V, 3] float in [0, 1])``."""
    path = shared_data / "scannet_scene0000" / "scene0000_00_vert_all.npy"
    if not path.is_file():
        pytest.skip(f"real ScanNet sample not found at {path}")
    verts = np.load(path).astype(np.float32)
    coords, _, rgb = voxelize(verts[:, :3], 0.10, verts[:, 3:6])
    return torch.from_numpy(coords), torch.from_numpy(rgb / 255.0).float()
