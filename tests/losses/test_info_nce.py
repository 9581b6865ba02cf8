"""InfoNCE against hand-computed values, permutation behaviour, and a 2-process gloo run that must
equal one process holding all pairs (loss, accuracy and input gradients)."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from pixvox.comm import launch_local
from pixvox.errors import EmptyBatchError
from pixvox.losses import info_nce


def test_hand_computed_two_pairs():
    q = torch.tensor([[1.0, 0.0], [0.0, 1.0]], dtype=torch.float64)
    k = torch.tensor([[1.0, 0.0], [0.6, 0.8]], dtype=torch.float64)
    # logits / tau=0.5: row 0 = [2, 1.2], row 1 = [0, 1.6]
    expected = 0.5 * (math.log(1 + math.exp(-0.8)) + math.log(1 + math.exp(-1.6)))
    r = info_nce(q, k, temperature=0.5)
    assert r.loss.item() == pytest.approx(expected, rel=1e-12)
    assert r.loss_value == pytest.approx(expected, rel=1e-12)
    assert r.accuracy == 1.0 and r.num_pairs == 2
    # keys against queries: key 0 -> [2, 0], key 1 -> [1.2, 1.6]
    backward = 0.5 * (math.log(1 + math.exp(-2.0)) + math.log(1 + math.exp(-0.4)))
    assert info_nce(q, k, 0.5, symmetric=True).loss.item() == pytest.approx(
        0.5 * (expected + backward), rel=1e-12
    )


def test_accuracy_counts_wrong_retrievals():
    q = torch.tensor([[1.0, 0.0], [1.0, 0.0]])
    k = torch.tensor([[0.0, 1.0], [1.0, 0.0]])  # query 0 retrieves key 1: wrong; query 1: right
    assert info_nce(q, k, 0.1).accuracy == 0.5


def _brute_force(q: torch.Tensor, k: torch.Tensor, tau: float) -> torch.Tensor:
    total = q.new_zeros(())
    for i in range(q.shape[0]):
        sims = torch.stack([q[i] @ k[j] / tau for j in range(k.shape[0])])
        total = total - (sims[i] - torch.logsumexp(sims, 0))
    return total / q.shape[0]


def test_random_pairs_match_brute_force_and_permutation_invariance(seed):
    g = torch.Generator().manual_seed(seed)
    q = F.normalize(torch.randn(17, 8, generator=g, dtype=torch.float64), dim=1)
    k = F.normalize(torch.randn(17, 8, generator=g, dtype=torch.float64), dim=1)
    r = info_nce(q, k, 0.07)
    assert r.loss.item() == pytest.approx(_brute_force(q, k, 0.07).item(), rel=1e-10)
    perm = torch.randperm(17, generator=g)
    qp, kp = q[perm].clone().requires_grad_(True), k[perm]
    rp = info_nce(qp, kp, 0.07)
    assert rp.loss.item() == pytest.approx(r.loss.item(), rel=1e-12)
    assert rp.accuracy == r.accuracy
    # The permuted pairs against an independent float64 reference, element by element: top-1
    # retrieval by brute force, and the closed-form gradient of the mean loss with respect to each
    # query, (sum_j softmax_j k_j - k_i) / (tau n).
    rp.loss.backward()
    n, tau = 17, 0.07
    hits, grad = 0, torch.zeros_like(q)
    for i in range(n):
        sims = [float(qp[i].detach() @ kp[j]) / tau for j in range(n)]
        hits += max(range(n), key=sims.__getitem__) == i
        z = sum(math.exp(s - max(sims)) for s in sims)
        soft = sum(math.exp(sims[j] - max(sims)) / z * kp[j] for j in range(n))
        grad[i] = (soft - kp[i]) / (tau * n)
    assert rp.accuracy == hits / n
    torch.testing.assert_close(qp.grad, grad, rtol=1e-9, atol=1e-12)


def test_rejects_mismatched_or_too_few_pairs():
    with pytest.raises(ValueError, match="both be"):
        info_nce(torch.zeros(3, 2), torch.zeros(2, 2), 0.1)
    with pytest.raises(EmptyBatchError, match="at least 2"):  # the trainer skips such a batch
        info_nce(torch.ones(1, 2), torch.ones(1, 2), 0.1)


SPLIT = (6, 11)


def _pairs(seed: int):
    g = torch.Generator().manual_seed(seed)
    q = F.normalize(torch.randn(sum(SPLIT), 5, generator=g, dtype=torch.float64), dim=1)
    k = F.normalize(torch.randn(sum(SPLIT), 5, generator=g, dtype=torch.float64), dim=1)
    return q, k


def _worker(rank: int, seed: int, symmetric: bool, out: str) -> None:
    q, k = _pairs(seed)
    lo = sum(SPLIT[:rank])
    qr = q[lo : lo + SPLIT[rank]].clone().requires_grad_(True)
    kr = k[lo : lo + SPLIT[rank]].clone().requires_grad_(True)
    r = info_nce(qr, kr, 0.2, symmetric=symmetric)
    r.loss.backward()
    torch.save(
        {"gq": qr.grad, "gk": kr.grad, "loss": r.loss_value, "acc": r.accuracy, "n": r.num_pairs},
        f"{out}/r{rank}.pt",
    )


@pytest.mark.parametrize("symmetric", [False, True])
def test_two_processes_equal_one(tmp_path, seed, symmetric):
    launch_local(_worker, 2, seed, symmetric, str(tmp_path))
    res = [torch.load(tmp_path / f"r{i}.pt", weights_only=True) for i in range(2)]
    q, k = _pairs(seed)
    q.requires_grad_(True)
    k.requires_grad_(True)
    ref = info_nce(q, k, 0.2, symmetric=symmetric)
    ref.loss.backward()
    for r in res:
        assert r["loss"] == pytest.approx(ref.loss_value, rel=1e-12)
        assert r["acc"] == ref.accuracy and r["n"] == sum(SPLIT)
    # Each process back-propagates world_size x its share, so that DDP's averaging over 2 processes
    # gives the single-process gradient.
    torch.testing.assert_close(torch.cat([res[0]["gq"], res[1]["gq"]]) / 2, q.grad)
    torch.testing.assert_close(torch.cat([res[0]["gk"], res[1]["gk"]]) / 2, k.grad)
