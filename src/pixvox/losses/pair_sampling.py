"""Choosing the matched pairs a contrastive loss scores.

Pairs are drawn per sample, a fixed quota each, with a generator seeded per sample (from the run
seed, the step and the sample's index in the *global* batch). The same global batch therefore yields
the same pairs whatever the number of processes it is split over.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import torch


class PixelVoxelPairs(NamedTuple):
    pair_voxel: torch.Tensor  #: [n] int64 student voxel of each pair
    pixel_index: torch.Tensor  #: [m] int64 rows of the matched-pixel list that feed the pairs' targets
    pixel_pair: torch.Tensor  #: [m] int64 pair each of those pixels belongs to


def _per_sample_choice(count: int, quota: int, seed: int, device: torch.device) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    perm = torch.randperm(count, generator=g)
    return perm[: min(quota, count)].to(device)


def first_occurrences(values: torch.Tensor) -> torch.Tensor:
    """``[n]`` bool: True where ``values[i]`` occurs for the first time in ``values`` (in order)."""
    n = values.numel()
    if n == 0:
        return values.new_zeros(0, dtype=torch.bool)
    _, inverse = torch.unique(values, return_inverse=True)
    pos = torch.arange(n, device=values.device)
    first = torch.full((int(inverse.max()) + 1,), n, device=values.device, dtype=pos.dtype)
    first.scatter_reduce_(0, inverse, pos, reduce="amin")
    return pos == first[inverse]


def _distinct_choice(keys: list[torch.Tensor], quota: int, seed: int) -> torch.Tensor:
    """Up to ``quota`` random positions of ``range(n)`` whose values in every ``keys[j]`` (``[n]``
    each) are all distinct: a random order, then the first occurrence of each value, key by key."""
    n = keys[0].numel()
    g = torch.Generator().manual_seed(seed)
    perm = torch.randperm(n, generator=g).to(keys[0].device)
    for k in keys:
        perm = perm[first_occurrences(k[perm])]
    return perm[:quota]


def select_voxel_pairs(
    pixel_voxel: torch.Tensor, voxel_offsets: torch.Tensor, seeds: Sequence[int], quota: int
) -> PixelVoxelPairs:
    """Voxel-averaged pairs: ``quota`` distinct matched voxels per sample; every pixel landing in a
    chosen voxel contributes to that voxel's 2D target.

    Args:
        pixel_voxel: ``[P]`` int64 student voxel index of each matched pixel (all >= 0).
        voxel_offsets: ``[B + 1]`` int64; sample b owns voxels ``voxel_offsets[b]:voxel_offsets[b+1]``.
        seeds: one int per sample (see module doc).
        quota: pairs per sample (fewer where a sample has fewer matched voxels).
    """
    device = pixel_voxel.device
    uniq = torch.unique(pixel_voxel)
    owner = torch.searchsorted(voxel_offsets[1:].to(device), uniq, right=True)
    chosen = []
    for b, seed in enumerate(seeds):
        cand = uniq[owner == b]
        if cand.numel():
            chosen.append(cand[_per_sample_choice(cand.numel(), quota, seed, device)])
    pair_voxel = torch.cat(chosen) if chosen else uniq[:0]
    lut = torch.full((int(voxel_offsets[-1]),), -1, dtype=torch.long, device=device)
    lut[pair_voxel] = torch.arange(pair_voxel.numel(), device=device)
    pair_of_pixel = lut[pixel_voxel]
    pixel_index = (pair_of_pixel >= 0).nonzero().squeeze(1)
    return PixelVoxelPairs(pair_voxel, pixel_index, pair_of_pixel[pixel_index])


def select_pixel_pairs(
    pixel_voxel: torch.Tensor, pixel_sample: torch.Tensor, seeds: Sequence[int], quota: int
) -> PixelVoxelPairs:
    """Pixel-level pairs: ``quota`` matched pixels per sample in distinct voxels, each paired with the
    voxel it lands in.

    ``pixel_sample``: ``[P]`` int64 local sample index of each matched pixel (non-decreasing).
    """
    device = pixel_voxel.device
    counts = torch.bincount(pixel_sample, minlength=len(seeds)).tolist()
    starts = [0]
    for c in counts:
        starts.append(starts[-1] + c)
    # One pixel per voxel: two pixels of one voxel share their query, so each would be scored as a
    # negative of the other although both are positives of that voxel.
    picks = [
        starts[b] + _distinct_choice([pixel_voxel[starts[b] : starts[b + 1]]], quota, seed)
        for b, seed in enumerate(seeds)
        if counts[b]
    ]
    pixel_index = torch.cat(picks) if picks else pixel_voxel.new_zeros(0)
    return PixelVoxelPairs(
        pixel_voxel[pixel_index], pixel_index, torch.arange(pixel_index.numel(), device=device)
    )


def select_point_pairs(
    orig_to_view1: torch.Tensor,
    orig_to_view2: torch.Tensor,
    orig_offsets: torch.Tensor,
    seeds: Sequence[int],
    quota: int,
) -> tuple[torch.Tensor, torch.Tensor]:
    """PointContrast pairs between two augmented views of the same voxels.

    ``orig_to_view{1,2}``: ``[Vo]`` int64 voxel of each original voxel in each view (matched through
    the shared world frame); ``orig_offsets``: ``[B + 1]`` per-sample ranges of original voxels.
    Returns ``(index_in_view1 [n], index_in_view2 [n])``, no row repeated in either view.
    """
    sample = torch.repeat_interleave(
        torch.arange(len(seeds), device=orig_to_view1.device),
        (orig_offsets[1:] - orig_offsets[:-1]).to(orig_to_view1.device),
    )
    return select_matched_pairs(orig_to_view1, orig_to_view2, sample, seeds, quota)


def select_matched_pairs(
    index1: torch.Tensor, index2: torch.Tensor, pair_sample: torch.Tensor, seeds: Sequence[int], quota: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Up to ``quota`` of the candidate pairs ``(index1[k], index2[k])`` per sample, drawn at random,
    with no row repeated in either view.

    ``index{1,2}``: ``[K]`` int64 rows of the two views; ``pair_sample``: ``[K]`` int64 sample of each
    candidate, non-decreasing. Revoxelization can send several stored voxels to one augmented voxel:
    a repeated row would be scored as a negative of itself, so only its first drawn pair is kept.
    """
    counts = torch.bincount(pair_sample, minlength=len(seeds)).tolist()
    picks, start = [], 0
    for b, seed in enumerate(seeds):
        lo, start = start, start + counts[b]
        if start > lo:
            picks.append(lo + _distinct_choice([index1[lo:start], index2[lo:start]], quota, seed))
    idx = torch.cat(picks) if picks else index1.new_zeros(0)
    return index1[idx], index2[idx]
