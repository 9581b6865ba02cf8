"""The batch sampler: the same global batches for any number of processes, and exact resumption."""

from __future__ import annotations

import itertools

import pytest

from pixvox.engine.sampler import ResumableBatchSampler


def take(sampler, n):
    return list(itertools.islice(iter(sampler), n))


@pytest.mark.parametrize("world", [1, 2, 4])
def test_union_over_ranks_is_the_single_process_batch(seed, world):
    n, batch, steps = 37, 8, 12
    single = take(ResumableBatchSampler(n, batch, seed=seed), steps)
    ranks = [take(ResumableBatchSampler(n, batch, r, world, seed=seed), steps) for r in range(world)]
    for t in range(steps):
        merged = sorted(x for r in range(world) for x in ranks[r][t])
        assert merged == sorted(single[t])
        assert all(len(ranks[r][t]) == batch // world for r in range(world))


def test_epochs_cover_each_sample_once_and_reshuffle(seed):
    n, batch = 24, 6
    s = ResumableBatchSampler(n, batch, seed=seed)
    batches = take(s, 8)
    epoch0 = [i for b in batches[:4] for i, _ in b]
    epoch1 = [i for b in batches[4:] for i, _ in b]
    assert sorted(epoch0) == list(range(n)) == sorted(epoch1)
    assert epoch0 != epoch1
    seeds0 = {i: s_ for b in batches[:4] for i, s_ in b}
    seeds1 = {i: s_ for b in batches[4:] for i, s_ in b}
    assert all(seeds0[i] != seeds1[i] for i in range(n))  # fresh augmentation every epoch


def test_resume_continues_the_same_sequence(seed):
    full = take(ResumableBatchSampler(50, 5, seed=seed), 25)
    resumed = take(ResumableBatchSampler(50, 5, seed=seed, start_step=13), 12)
    assert resumed == full[13:]
    assert len(ResumableBatchSampler(50, 5, seed=seed, start_step=13, max_steps=20)) == 7


def test_bad_sizes_are_explained():
    with pytest.raises(ValueError, match="divisible"):
        ResumableBatchSampler(10, 3, 0, 2)
    with pytest.raises(ValueError, match="fewer than one global batch"):
        ResumableBatchSampler(3, 4)
