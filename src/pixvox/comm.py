"""Process-group helpers (like detectron2's comm): set-up from torchrun's environment, collectives that
carry gradients, and a BatchNorm that synchronizes statistics on CPU (gloo) as well as GPU.

All helpers work unchanged in a single process (world size 1, no process group).
"""

from __future__ import annotations

import datetime
import os
from dataclasses import dataclass

import torch
import torch.distributed as dist
import torch.distributed.nn.functional as dist_nn
from torch import nn

from pixvox.errors import DeviceUnavailableError


@dataclass(frozen=True)
class DistInfo:
    rank: int
    local_rank: int
    world_size: int
    device: torch.device
    backend: str | None

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def is_initialized() -> bool:
    return dist.is_available() and dist.is_initialized()


def world_size() -> int:
    return dist.get_world_size() if is_initialized() else 1


def rank() -> int:
    return dist.get_rank() if is_initialized() else 0


def init_distributed(device: str = "auto", timeout_minutes: int = 30) -> DistInfo:
    """Join the process group that torchrun describes in the environment (RANK, WORLD_SIZE, ...).

    ``device``: auto (CUDA when available), cpu or cuda. Uses nccl on GPU and gloo on CPU. Without
    torchrun's variables, runs as a single process.
    """
    use_cuda = torch.cuda.is_available() if device == "auto" else device == "cuda"
    if use_cuda and not torch.cuda.is_available():
        raise DeviceUnavailableError(
            "train.device=cuda but torch sees no CUDA device; use train.device=cpu or auto"
        )
    local_rank = int(os.environ.get("LOCAL_RANK", 0))
    world = int(os.environ.get("WORLD_SIZE", 1))
    if use_cuda:
        torch.cuda.set_device(local_rank % torch.cuda.device_count())
        dev = torch.device("cuda", torch.cuda.current_device())
    else:
        dev = torch.device("cpu")
    backend = None
    if world > 1 and not is_initialized():
        backend = "nccl" if use_cuda else "gloo"
        dist.init_process_group(backend, timeout=datetime.timedelta(minutes=timeout_minutes))
    elif is_initialized():
        backend = dist.get_backend()
    return DistInfo(rank(), local_rank, world_size(), dev, backend)


def barrier() -> None:
    if is_initialized():
        dist.barrier()


def all_reduce_sum(t: torch.Tensor) -> torch.Tensor:
    """Sum over processes (no gradient); returns a new tensor."""
    t = t.detach().clone()
    if is_initialized() and world_size() > 1:
        dist.all_reduce(t)
    return t


def broadcast_object(obj):
    """Rank 0's ``obj`` on every process."""
    if not (is_initialized() and world_size() > 1):
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def broadcast_tensors(tensors: list[torch.Tensor], src: int = 0) -> None:
    """Overwrite ``tensors`` in place with rank ``src``'s values (no-op in a single process)."""
    if not (is_initialized() and world_size() > 1):
        return
    with torch.no_grad():
        for t in tensors:
            dist.broadcast(t.data, src=src)


def all_gather_variable(t: torch.Tensor) -> tuple[torch.Tensor, int]:
    """Concatenate ``t`` (``[n_r, ...]``, n_r may differ per rank) from all ranks, with gradients.

    Returns the ``[sum n_r, ...]`` tensor in rank order and this rank's row offset in it. The
    backward pass sends each rank the sum of the gradients of its own rows over all ranks.
    """
    if not (is_initialized() and world_size() > 1):
        return t, 0
    counts = torch.zeros(world_size(), dtype=torch.long, device=t.device)
    counts[rank()] = t.shape[0]
    dist.all_reduce(counts)
    counts_l = counts.tolist()
    pad = max(counts_l) - t.shape[0]
    padded = torch.cat([t, t.new_zeros((pad, *t.shape[1:]))]) if pad else t
    parts = dist_nn.all_gather(padded)
    out = torch.cat([p[:c] for p, c in zip(parts, counts_l)])
    return out, sum(counts_l[: rank()])


class DistributedBatchNorm(nn.BatchNorm1d):
    """BatchNorm whose training statistics are computed over the samples of all processes.

    Unlike ``torch.nn.SyncBatchNorm`` it also runs on CPU with gloo. Accepts ``[N, C]`` (sparse voxel
    features) or ``[N, C, *spatial]``; parameters and buffers have BatchNorm's names, so state dicts
    are interchangeable with the layer it replaces. Without a process group it is plain BatchNorm.
    """

    def _check_input_dim(self, input: torch.Tensor) -> None:
        if input.dim() < 2:
            raise ValueError(f"expected at least 2D input [N, C, ...], got {input.dim()}D")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not (self.training and is_initialized() and world_size() > 1):
            return nn.functional.batch_norm(
                x,
                self.running_mean,
                self.running_var,
                self.weight,
                self.bias,
                self.training or self.running_mean is None,
                self.momentum or 0.0,
                self.eps,
            )
        # Each process's mean and sum of squared deviations, combined over processes with Chan et al.'s
        # pairwise formula: E[x^2] - E[x]^2 would cancel catastrophically on features with a large
        # mean (1e4 with std 1 leaves no correct digit in float32).
        dims = [0, *range(2, x.dim())]
        c = x.shape[1]
        shape = [1, c] + [1] * (x.dim() - 2)
        n_local = x.numel() // c
        local_mean = x.sum(dims) / max(n_local, 1)
        local_m2 = ((x - local_mean.view(shape)) ** 2).sum(dims)
        stats = torch.cat([local_mean, local_m2, x.new_tensor([float(n_local)])])
        parts = torch.stack(dist_nn.all_gather(stats))  # [world, 2C + 1], with gradients
        counts = parts[:, -1:]
        n = counts.sum()
        mean = (counts * parts[:, :c]).sum(0) / n
        m2 = parts[:, c : 2 * c].sum(0) + (counts * (parts[:, :c] - mean) ** 2).sum(0)
        var = m2 / n
        if self.track_running_stats and self.running_mean is not None:
            with torch.no_grad():
                m = self.momentum if self.momentum is not None else 0.1
                unbiased = var * n / (n - 1).clamp_min(1)
                self.running_mean.mul_(1 - m).add_(m * mean.detach().to(self.running_mean.dtype))
                self.running_var.mul_(1 - m).add_(m * unbiased.detach().to(self.running_var.dtype))
                self.num_batches_tracked.add_(1)
        y = (x - mean.view(shape)) * torch.rsqrt(var.view(shape) + self.eps)
        if self.affine:
            y = y * self.weight.view(shape) + self.bias.view(shape)
        return y


def convert_to_distributed_batchnorm(module: nn.Module) -> nn.Module:
    """Replace every torch ``BatchNorm{1,2,3}d`` (also those inside MinkowskiEngine's BatchNorm) by
    :class:`DistributedBatchNorm`, keeping parameters, buffers and their names. Returns the module."""
    if isinstance(module, nn.modules.batchnorm._BatchNorm) and not isinstance(
        module, (DistributedBatchNorm, nn.SyncBatchNorm)
    ):
        new = DistributedBatchNorm(
            module.num_features, module.eps, module.momentum, module.affine, module.track_running_stats
        )
        ref = module.weight if module.affine else module.running_mean
        if ref is not None:
            new = new.to(device=ref.device, dtype=ref.dtype)
        new.load_state_dict(module.state_dict())
        new.train(module.training)
        for p_new, p_old in zip(new.parameters(), module.parameters()):
            p_new.requires_grad_(p_old.requires_grad)
        return new
    for name, child in module.named_children():
        setattr(module, name, convert_to_distributed_batchnorm(child))
    return module


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _spawned(local_rank: int, fn, world: int, port: int, args: tuple) -> None:
    os.environ.update(
        MASTER_ADDR="127.0.0.1",
        MASTER_PORT=str(port),
        RANK=str(local_rank),
        LOCAL_RANK=str(local_rank),
        WORLD_SIZE=str(world),
        LOCAL_WORLD_SIZE=str(world),  # as torchrun sets it: the processes share this machine's cores
    )
    torch.set_num_threads(1)
    dist.init_process_group("gloo", rank=local_rank, world_size=world)
    try:
        fn(local_rank, *args)
    finally:
        dist.destroy_process_group()


def launch_local(fn, world_size_: int, *args) -> None:
    """Run ``fn(rank, *args)`` in ``world_size_`` local CPU processes joined by gloo (tests, debugging).

    ``fn`` must be importable (a module-level function); results travel back through files.
    """
    import torch.multiprocessing as mp

    mp.spawn(_spawned, args=(fn, world_size_, _free_port(), args), nprocs=world_size_, join=True)
