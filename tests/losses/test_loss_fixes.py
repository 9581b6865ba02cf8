"""Issue 11 item 5: InfoNCE logits in fp32 under autocast; no pair scored against a copy of itself."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from pixvox.losses import PointInfoNCE, info_nce, select_pixel_pairs, select_point_pairs


def _info_nce64(q: torch.Tensor, k: torch.Tensor, tau: float) -> float:
    logits = q.double() @ k.double().T / tau
    return float((torch.logsumexp(logits, 1) - logits.diagonal()).mean())


@pytest.mark.parametrize("symmetric", [False, True])
def test_info_nce_under_cpu_bf16_autocast_matches_float64(seed, symmetric):
    g = torch.Generator().manual_seed(seed)
    q = F.normalize(torch.randn(96, 32, generator=g), dim=1)
    k = F.normalize(q + 0.3 * torch.randn(96, 32, generator=g), dim=1)
    ref = _info_nce64(q, k, 0.04)
    if symmetric:
        ref = 0.5 * (ref + _info_nce64(k, q, 0.04))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert torch.is_autocast_enabled("cpu") and (q @ k.T).dtype == torch.bfloat16  # autocast is on
        r = info_nce(q, k, 0.04, symmetric=symmetric, gather=False)
    assert r.loss.dtype == torch.float32
    assert r.loss.item() == pytest.approx(ref, rel=1e-5)  # bf16 logits: ~1e-3 relative error in the loss


def test_point_info_nce_under_autocast_matches_float64(seed):
    g = torch.Generator().manual_seed(seed)
    f1, f2 = torch.randn(50, 16, generator=g), torch.randn(40, 16, generator=g)
    i1, i2 = torch.randperm(50, generator=g)[:30], torch.randperm(40, generator=g)[:30]
    ref = _info_nce64(F.normalize(f1[i1].double(), dim=1), F.normalize(f2[i2].double(), dim=1), 0.07)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        r = PointInfoNCE(0.07)(f1, f2, i1, i2, gather=False)
    assert r.loss.item() == pytest.approx(ref, rel=1e-5)


def test_first_occurrences_by_brute_force(seed):
    from pixvox.losses.pair_sampling import first_occurrences

    v = torch.randint(0, 9, (40,), generator=torch.Generator().manual_seed(seed))
    expected = [int(v[i]) not in v[:i].tolist() for i in range(40)]
    assert first_occurrences(v).tolist() == expected


def test_pixel_level_pairs_never_share_a_voxel(seed):
    """Many pixels per voxel: the chosen pixels of a sample land in distinct voxels (else two pairs
    with one query would be each other's negatives), as many as the quota or the voxels allow."""
    g = torch.Generator().manual_seed(seed)
    # sample 0: 400 pixels in voxels 0..9; sample 1: 300 pixels in voxels 10..13
    pixel_voxel = torch.cat(
        [torch.randint(0, 10, (400,), generator=g), torch.randint(10, 14, (300,), generator=g)]
    )
    pixel_sample = torch.cat([torch.zeros(400, dtype=torch.long), torch.ones(300, dtype=torch.long)])
    for quota in (6, 8):
        p = select_pixel_pairs(pixel_voxel, pixel_sample, [seed, seed + 1], quota)
        chosen = p.pair_voxel.tolist()
        assert len(chosen) == len(set(chosen)) == quota + 4  # sample 1 has only 4 voxels
        assert torch.equal(pixel_voxel[p.pixel_index], p.pair_voxel)  # each pixel lies in its voxel
        assert torch.equal(pixel_sample[p.pixel_index], torch.tensor([0] * quota + [1] * 4))
    # every voxel can be drawn: the choice is random, not the lowest ids
    seen = set()
    for s in range(30):
        seen |= set(select_pixel_pairs(pixel_voxel, pixel_sample, [s, s], 3).pair_voxel.tolist())
    assert seen == set(range(14))


def test_point_pairs_repeat_no_row_after_revoxelization(seed):
    """Revoxelization sends several stored voxels to one augmented voxel (here 2-4 per row in view 1,
    a different grouping in view 2): every chosen row occurs once per view, and every pair is a
    stored voxel's own (row in view 1, row in view 2)."""
    g = torch.Generator().manual_seed(seed)
    sizes = [300, 200]
    v1, v2, off1, off2 = [], [], 0, 0
    for n in sizes:
        a = torch.randint(0, n // 3, (n,), generator=g)
        b = torch.randint(0, n // 2, (n,), generator=g)
        v1.append(a + off1)
        v2.append(b + off2)
        off1, off2 = off1 + n // 3, off2 + n // 2
    orig_to_view1, orig_to_view2 = torch.cat(v1), torch.cat(v2)
    offsets = torch.tensor([0, sizes[0], sum(sizes)])
    assert orig_to_view1.unique().numel() < orig_to_view1.numel()  # collisions exist
    i1, i2 = select_point_pairs(orig_to_view1, orig_to_view2, offsets, [seed, seed + 7], 40)
    assert i1.numel() == 80
    assert i1.unique().numel() == i1.numel() and i2.unique().numel() == i2.numel()
    stored = set(zip(orig_to_view1.tolist(), orig_to_view2.tolist()))
    assert all(pair in stored for pair in zip(i1.tolist(), i2.tolist()))
