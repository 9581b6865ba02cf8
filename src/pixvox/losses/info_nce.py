"""InfoNCE over matched pairs, optionally with negatives gathered from every process."""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F

from pixvox.comm import all_gather_variable, all_reduce_sum, world_size
from pixvox.errors import EmptyBatchError


class InfoNCEResult(NamedTuple):
    loss: torch.Tensor  #: scalar to back-propagate on this process (see :func:`info_nce`)
    loss_value: float  #: the global mean loss over all pairs of all processes (for logging)
    accuracy: float  #: global top-1 retrieval accuracy of queries among all keys
    num_pairs: int  #: global number of pairs N (chance accuracy = 1 / N)


def similarity_logits(query: torch.Tensor, key: torch.Tensor, temperature: float) -> torch.Tensor:
    """``query @ key.T / temperature`` in float32 (float64 for float64 inputs), autocast off.

    Under bf16 autocast the matrix product would otherwise run in bf16 (8 bits of mantissa): at
    τ = 0.04 a cosine's rounding error of ~4e-3 becomes ~0.1 in the logits, more than the gaps the
    loss has to learn from.
    """
    dtype = torch.float64 if torch.float64 in (query.dtype, key.dtype) else torch.float32
    with torch.autocast(device_type=query.device.type, enabled=False):
        return query.to(dtype) @ key.to(dtype).T / temperature


def info_nce(
    query: torch.Tensor, key: torch.Tensor, temperature: float, symmetric: bool = False, gather: bool = True
) -> InfoNCEResult:
    """Cross-entropy over the N×N similarity matrix of matched (query_i, key_i) pairs.

    Args:
        query: ``[n, D]`` this process's queries (e.g. student voxel features), L2-normalized.
        key: ``[n, D]`` the matching keys (teacher pixel targets), L2-normalized; row i matches query i.
        temperature: τ; logits are ``query @ key.T / τ``.
        symmetric: also score each key against all queries and average both directions.
        gather: use the pairs of all processes (training); False scores this process's pairs alone
            (evaluation, where every process may hold the same data).

    With several processes, keys (and queries when symmetric) are gathered from all of them with
    gradients, so every query competes against all N pairs of the global batch, exactly as in one
    process. The returned ``loss`` is scaled so that DDP's gradient averaging yields the gradient of
    the global mean loss.
    """
    if query.shape != key.shape or query.ndim != 2:
        raise ValueError(
            f"query and key must both be [n, D], got {tuple(query.shape)} and {tuple(key.shape)}"
        )
    n_local = query.shape[0]
    collect = all_gather_variable if gather else (lambda t: (t, 0))
    reduce = all_reduce_sum if gather else (lambda t: t)
    all_key, offset = collect(key)
    n_total = all_key.shape[0]
    if n_total < 2:
        raise EmptyBatchError(f"InfoNCE needs at least 2 pairs across the batch, got {n_total}")
    target = torch.arange(offset, offset + n_local, device=query.device)
    logits = similarity_logits(query, all_key, temperature)
    losses = F.cross_entropy(logits, target, reduction="none")
    correct = (logits.argmax(1) == target).sum()
    if symmetric:
        all_query, _ = collect(query)
        logits_k = similarity_logits(key, all_query, temperature)
        losses = 0.5 * (losses + F.cross_entropy(logits_k, target, reduction="none"))
    stats = reduce(torch.stack([losses.detach().sum(), correct.to(losses.dtype)]).double())
    scale = (world_size() if gather else 1) / n_total
    return InfoNCEResult(
        loss=losses.sum() * scale,
        loss_value=float(stats[0]) / n_total,
        accuracy=float(stats[1]) / n_total,
        num_pairs=n_total,
    )
