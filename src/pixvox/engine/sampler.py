"""A resumable, distributed batch sampler whose batches depend only on (seed, step).

Step t of epoch e takes global batch ``perm_e[t*B:(t+1)*B]`` of a per-epoch permutation; rank r gets
every W-th element of it. Hence the union over ranks of a step's batches is the same for any number
of processes, and a resumed run continues exactly where it stopped. Each element is yielded as
``(dataset_index, sample_seed)``: the seed drives that sample's augmentation and pair sampling, so
they do not depend on worker processes or on how the batch is split.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import torch

from pixvox.config import ConfigError


def sample_seed(seed: int, epoch: int, index: int) -> int:
    return int(np.random.SeedSequence([seed, epoch, index]).generate_state(1)[0])


class ResumableBatchSampler(torch.utils.data.Sampler):
    def __init__(
        self,
        num_samples: int,
        global_batch_size: int,
        rank: int = 0,
        world_size: int = 1,
        seed: int = 0,
        shuffle: bool = True,
        start_step: int = 0,
        max_steps: int | None = None,
    ) -> None:
        if global_batch_size % world_size:
            raise ConfigError(
                f"train.batch_size={global_batch_size} (global) must be divisible by the {world_size} processes"
            )
        if num_samples < global_batch_size:
            raise ConfigError(
                f"the dataset has {num_samples} samples, fewer than one global batch of {global_batch_size}; "
                "lower train.batch_size or prepare more data"
            )
        self.num_samples = num_samples
        self.batch = global_batch_size
        self.rank, self.world = rank, world_size
        self.seed, self.shuffle = seed, shuffle
        self.start_step = start_step
        self.max_steps = max_steps
        self.steps_per_epoch = num_samples // global_batch_size

    def global_batch(self, step: int) -> list[int]:
        epoch, t = divmod(step, self.steps_per_epoch)
        if self.shuffle:
            perm = np.random.default_rng([self.seed, epoch]).permutation(self.num_samples)
        else:
            perm = np.arange(self.num_samples)
        return perm[t * self.batch : (t + 1) * self.batch].tolist()

    def __iter__(self) -> Iterator[list[tuple[int, int]]]:
        step = self.start_step
        while self.max_steps is None or step < self.max_steps:
            epoch = step // self.steps_per_epoch
            idx = self.global_batch(step)[self.rank :: self.world]
            yield [(i, sample_seed(self.seed, epoch, i)) for i in idx]
            step += 1

    def __len__(self) -> int:
        if self.max_steps is None:
            raise TypeError("an endless sampler has no length")
        return max(0, self.max_steps - self.start_step)
