"""VoxelHash against a Python dict, at the edges of the key range and with bad input."""

from __future__ import annotations

import pytest
import torch

from pixvox.geometry import MAX_VOXEL_COORD
from pixvox.ops import VoxelHash

EDGE = MAX_VOXEL_COORD - 1


def random_unique_coords(gen: torch.Generator, n: int, batches: int) -> torch.Tensor:
    """[N', 4] int64 unique coordinates: a dense cluster plus voxels at the extremes of the key range."""
    batch = torch.randint(0, batches, (n, 1), generator=gen)
    xyz = torch.randint(-40, 40, (n, 3), generator=gen)
    far = torch.rand(n, 3, generator=gen) < 0.1
    edge = torch.where(torch.rand(n, 3, generator=gen) < 0.5, EDGE, -EDGE)
    xyz = torch.where(far, edge - torch.randint(0, 3, (n, 3), generator=gen) * torch.sign(edge), xyz)
    return torch.unique(torch.cat([batch, xyz], dim=1), dim=0)


def test_lookup_matches_dict(gen, device):
    coords = random_unique_coords(gen, 4000, batches=3)
    coords = coords[torch.randperm(coords.shape[0], generator=gen)]
    table = {tuple(row): i for i, row in enumerate(coords.tolist())}

    stored = coords[torch.randperm(coords.shape[0], generator=gen)]
    nudged = stored.clone()
    nudged[torch.arange(nudged.shape[0]), 1 + torch.randint(0, 3, (nudged.shape[0],), generator=gen)] += 1
    other_batch = stored.clone()
    other_batch[:, 0] += 3  # batches 3..5 do not exist
    outside = stored[:50].clone()
    outside[:, 1] = torch.where(outside[:, 1] >= 0, MAX_VOXEL_COORD, -MAX_VOXEL_COORD)
    negative_batch = stored[:50].clone()
    negative_batch[:, 0] = -1
    queries = torch.cat([stored, nudged, other_batch, outside, negative_batch])

    got = VoxelHash(coords.int().to(device)).lookup(queries.int().to(device)).cpu()
    want = torch.tensor([table.get(tuple(q), -1) for q in queries.tolist()])
    assert got.dtype == torch.int64
    assert torch.equal(got, want)
    assert int((want >= 0).sum()) >= coords.shape[0]  # every stored voxel was found at least once


def test_int64_queries_do_not_wrap_onto_stored_voxels(gen, device):
    coords = random_unique_coords(gen, 500, batches=2)
    scene = VoxelHash(coords.to(device))
    # x + 2^32 narrows to x in int32: it must be absent, not an alias of the stored voxel.
    wrapped = coords.clone()
    wrapped[:, 1] += 2**32
    huge_batch = coords.clone()
    huge_batch[:, 0] += 2**32
    assert bool((scene.lookup(wrapped.to(device)) == -1).all())
    assert bool((scene.lookup(huge_batch.to(device)) == -1).all())
    assert torch.equal(scene.lookup(coords.to(device)).cpu(), torch.arange(coords.shape[0]))


def test_extreme_keys_are_distinct(device):
    corners = torch.tensor(
        [
            [b, x, y, z]
            for b in (0, 1, 7)
            for x in (-EDGE, EDGE)
            for y in (-EDGE, 0, EDGE)
            for z in (-EDGE, EDGE)
        ],
        dtype=torch.int32,
    )
    scene = VoxelHash(corners.to(device))
    assert torch.equal(scene.lookup(corners.to(device)).cpu(), torch.arange(corners.shape[0]))


def test_empty_hash(device):
    scene = VoxelHash(torch.empty(0, 4, dtype=torch.int32, device=device))
    assert len(scene) == 0
    queries = torch.tensor([[0, 0, 0, 0], [1, 5, -5, 2]], dtype=torch.int32, device=device)
    assert scene.lookup(queries).tolist() == [-1, -1]
    assert scene.lookup(queries[:0]).shape == (0,)


def test_duplicate_rows_are_named(device):
    coords = torch.tensor([[0, 1, 2, 3], [1, 1, 2, 3], [0, 4, 5, 6], [0, 1, 2, 3]], dtype=torch.int32)
    with pytest.raises(ValueError, match=r"duplicate voxel coordinate \(0, 1, 2, 3\) at rows 0 and 3"):
        VoxelHash(coords.to(device))


@pytest.mark.parametrize("value", [MAX_VOXEL_COORD, -MAX_VOXEL_COORD, 2**30])
def test_coordinates_beyond_key_range_raise(device, value):
    coords = torch.tensor([[0, 0, 0, 0], [0, 1, value, 2]], dtype=torch.int64)
    with pytest.raises(ValueError, match=r"coords\[1\].*1048576"):
        VoxelHash(coords.to(device))


def test_largest_coordinates_are_accepted(device):
    coords = torch.tensor([[0, EDGE, -EDGE, EDGE], [0, -EDGE, EDGE, -EDGE]], dtype=torch.int32, device=device)
    assert VoxelHash(coords).lookup(coords).tolist() == [0, 1]


def test_bad_inputs_raise():
    with pytest.raises(ValueError, match="batch indices"):
        VoxelHash(torch.tensor([[-1, 0, 0, 0]]))
    with pytest.raises(TypeError, match="integer voxel coordinates"):
        VoxelHash(torch.zeros(3, 4))
    with pytest.raises(ValueError, match=r"\[N, 4\]"):
        VoxelHash(torch.zeros(3, 3, dtype=torch.int32))
    scene = VoxelHash(torch.zeros(1, 4, dtype=torch.int32))
    with pytest.raises(TypeError, match="integer"):
        scene.lookup(torch.zeros(1, 4))
    with pytest.raises(ValueError, match=r"\[M, 4\]"):
        scene.lookup(torch.zeros(4, dtype=torch.int32))
