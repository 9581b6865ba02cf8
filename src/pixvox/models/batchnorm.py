"""Conversion of every BatchNorm (MinkowskiEngine and torch) to synchronized BatchNorm for multi-GPU runs."""

from __future__ import annotations

import torch
from torch import nn

from pixvox.sparse import ME

__all__ = ["convert_sync_batchnorm"]


def _to_sync(bn: nn.modules.batchnorm._BatchNorm, process_group) -> nn.SyncBatchNorm:
    sync = nn.SyncBatchNorm(
        bn.num_features, bn.eps, bn.momentum, bn.affine, bn.track_running_stats, process_group=process_group
    )
    if bn.affine:
        # the same Parameter objects: optimizer references and requires_grad (frozen teacher) carry over
        sync.weight, sync.bias = bn.weight, bn.bias
    if bn.track_running_stats:
        sync.running_mean, sync.running_var = bn.running_mean, bn.running_var
        sync.num_batches_tracked = bn.num_batches_tracked
    sync.train(bn.training)
    return sync.to(bn.weight.device if bn.affine else bn.running_mean.device)


def convert_sync_batchnorm(module: nn.Module, process_group=None) -> nn.Module:
    """Make every BatchNorm synchronized: ME → ``ME.MinkowskiSyncBatchNorm``, torch → ``nn.SyncBatchNorm``.

    Parameters and running statistics are kept (same tensors), so outputs are unchanged in eval mode
    and state-dict keys stay the same. Returns the converted module (a new one when ``module`` itself
    is a BatchNorm); call before wrapping in DistributedDataParallel.
    """
    if isinstance(module, ME.MinkowskiBatchNorm) and not isinstance(module, ME.MinkowskiSyncBatchNorm):
        inner = module.bn
        out = ME.MinkowskiSyncBatchNorm(
            inner.num_features, eps=inner.eps, momentum=inner.momentum, affine=inner.affine,
            track_running_stats=inner.track_running_stats, process_group=process_group,
        )  # fmt: skip
        out.bn = _to_sync(inner, process_group)
        out.train(module.training)
        return out
    if isinstance(module, nn.modules.batchnorm._BatchNorm) and not isinstance(module, nn.SyncBatchNorm):
        return _to_sync(module, process_group)
    for name, child in module.named_children():
        converted = convert_sync_batchnorm(child, process_group)
        if converted is not child:
            setattr(module, name, converted)
    return module


def count_batchnorms(module: nn.Module) -> dict[str, int]:
    """Numbers of plain and synchronized BatchNorm layers (torch level), for checks and logs."""
    layers = [m for m in module.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    sync = sum(isinstance(m, torch.nn.SyncBatchNorm) for m in layers)
    return {"sync": sync, "plain": len(layers) - sync}
