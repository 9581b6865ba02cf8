"""PixelToVoxelInfoNCE and pair sampling against explicit per-pair loops in float64."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from pixvox.losses import (
    PixelToVoxelInfoNCE,
    PointInfoNCE,
    select_pixel_pairs,
    select_point_pairs,
    select_voxel_pairs,
)


def test_tiny_example_by_hand():
    # Three voxels; pair 0 = voxel 2 with pixels {0, 1}; pair 1 = voxel 0 with pixel {2}.
    voxel = torch.tensor([[1.0, 0.0], [5.0, 5.0], [0.0, 2.0]], dtype=torch.float64)
    pixels = torch.tensor([[0.0, 1.0], [1.0, 1.0], [1.0, 0.0]], dtype=torch.float64)
    r = PixelToVoxelInfoNCE(temperature=1.0)(voxel, pixels, torch.tensor([2, 0]), torch.tensor([0, 0, 1]))
    # queries: (0, 1) and (1, 0); keys: normalize((0.5, 1)) = (1, 2)/sqrt5 and (1, 0)
    s = 1 / math.sqrt(5)
    l0 = -(2 * s) + math.log(math.exp(2 * s) + math.exp(0.0))
    l1 = -1.0 + math.log(math.exp(1 * s) + math.exp(1.0))
    assert r.loss.item() == pytest.approx((l0 + l1) / 2, rel=1e-12)
    assert r.accuracy == 1.0


def test_random_case_equals_loop_reference(seed):
    g = torch.Generator().manual_seed(seed)
    V, P, D, n = 40, 300, 6, 12
    voxel = torch.randn(V, D, generator=g, dtype=torch.float64, requires_grad=True)
    pix = torch.randn(P, D, generator=g, dtype=torch.float64, requires_grad=True)
    pair_voxel = torch.randperm(V, generator=g)[:n]
    pixel_pair = torch.cat([torch.arange(n), torch.randint(0, n, (P - n,), generator=g)])
    r = PixelToVoxelInfoNCE(0.1)(voxel, pix, pair_voxel, pixel_pair)
    r.loss.backward()
    g_vox, g_pix = voxel.grad.clone(), pix.grad.clone()
    voxel.grad = pix.grad = None
    keys = torch.stack([F.normalize(pix[pixel_pair == i].mean(0), dim=0) for i in range(n)])
    queries = torch.stack([F.normalize(voxel[pair_voxel[i]], dim=0) for i in range(n)])
    ref = (
        sum(-(queries[i] @ keys[i] / 0.1) + torch.logsumexp(queries[i] @ keys.T / 0.1, 0) for i in range(n))
        / n
    )
    ref.backward()
    assert r.loss.item() == pytest.approx(ref.item(), rel=1e-10)
    torch.testing.assert_close(g_vox, voxel.grad)
    torch.testing.assert_close(g_pix, pix.grad)


def test_voxel_pairs_respect_quota_and_samples(seed):
    g = torch.Generator().manual_seed(seed)
    offsets = torch.tensor([0, 30, 30, 75])  # sample 1 has no voxels
    pixel_voxel = torch.cat(
        [torch.randint(0, 30, (200,), generator=g), torch.randint(30, 50, (100,), generator=g)]
    )
    seeds = [11, 12, 13]
    p = select_voxel_pairs(pixel_voxel, offsets, seeds, quota=8)
    assert p.pair_voxel.numel() == 16 and p.pair_voxel.unique().numel() == 16
    assert (p.pair_voxel[:8] < 30).all() and (p.pair_voxel[8:] >= 30).all()
    # every pixel of a chosen voxel feeds that pair, and no other pixel
    chosen = set(p.pair_voxel.tolist())
    assert set(p.pixel_index.tolist()) == {i for i, v in enumerate(pixel_voxel.tolist()) if v in chosen}
    assert torch.equal(p.pair_voxel[p.pixel_pair], pixel_voxel[p.pixel_index])
    # the same samples at other offsets (as on another process) pick the same voxels
    shifted = select_voxel_pairs(pixel_voxel[200:] - 30, torch.tensor([0, 45]), seeds[2:], quota=8)
    assert torch.equal(shifted.pair_voxel + 30, p.pair_voxel[8:])
    assert torch.equal(p.pair_voxel, select_voxel_pairs(pixel_voxel, offsets, seeds, 8).pair_voxel)


def test_pixel_pairs_and_point_pairs(seed):
    pixel_sample = torch.tensor([0] * 10 + [1] * 3)
    pixel_voxel = torch.arange(13) * 2
    p = select_pixel_pairs(pixel_voxel, pixel_sample, [1, 2], quota=4)
    assert p.pixel_index.numel() == 7 and torch.equal(p.pair_voxel, pixel_voxel[p.pixel_index])
    assert torch.equal(p.pixel_pair, torch.arange(7))
    o2v1 = torch.arange(20)
    o2v2 = torch.arange(20).flip(0)
    i1, i2 = select_point_pairs(o2v1, o2v2, torch.tensor([0, 12, 20]), [5, 6], quota=5)
    assert i1.numel() == 10 and torch.equal(i2, 19 - i1)


def test_point_info_nce_is_info_nce_of_matched_rows(seed):
    g = torch.Generator().manual_seed(seed)
    f1 = torch.randn(30, 4, generator=g, dtype=torch.float64)
    f2 = torch.randn(25, 4, generator=g, dtype=torch.float64)
    i1, i2 = torch.tensor([0, 5, 7]), torch.tensor([3, 3, 24])
    r = PointInfoNCE(0.4)(f1, f2, i1, i2)
    q, k = F.normalize(f1[i1], dim=1), F.normalize(f2[i2], dim=1)
    ref = F.cross_entropy(q @ k.T / 0.4, torch.arange(3))
    assert r.loss.item() == pytest.approx(ref.item(), rel=1e-12)
