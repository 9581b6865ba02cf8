"""Collectives with gradients and the CPU-capable synchronized BatchNorm, in real 2-process gloo runs,
against single-process references on the concatenated data (float64)."""

from __future__ import annotations

import torch

from pixvox.comm import (
    DistributedBatchNorm,
    all_gather_variable,
    convert_to_distributed_batchnorm,
    launch_local,
)

SIZES = (5, 9)  # unequal rows per rank


def _data(seed: int):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(sum(SIZES), 4, dtype=torch.float64, generator=g) * 3 + 1
    up = torch.randn(sum(SIZES), 4, dtype=torch.float64, generator=g)
    return x, up


def _bn_worker(rank: int, seed: int, out_dir: str) -> None:
    x, up = _data(seed)
    lo = sum(SIZES[:rank])
    xr = x[lo : lo + SIZES[rank]].clone().requires_grad_(True)
    bn = DistributedBatchNorm(4, momentum=0.1).double()
    with torch.no_grad():
        bn.weight.copy_(torch.linspace(0.5, 2, 4))
        bn.bias.copy_(torch.linspace(-1, 1, 4))
    y = bn(xr)
    (y * up[lo : lo + SIZES[rank]]).sum().backward()
    gathered, offset = all_gather_variable(xr.detach() * 2)
    torch.save(
        {
            "y": y.detach(),
            "gx": xr.grad,
            "gw": bn.weight.grad,
            "gb": bn.bias.grad,
            "rm": bn.running_mean,
            "rv": bn.running_var,
            "gathered": gathered,
            "offset": offset,
        },
        f"{out_dir}/rank{rank}.pt",
    )


def test_distributed_batchnorm_equals_batchnorm_on_the_whole_batch(tmp_path, seed):
    launch_local(_bn_worker, 2, seed, str(tmp_path))
    r = [torch.load(tmp_path / f"rank{i}.pt", weights_only=True) for i in range(2)]
    x, up = _data(seed)
    x = x.clone().requires_grad_(True)
    ref = torch.nn.BatchNorm1d(4, momentum=0.1).double()
    with torch.no_grad():
        ref.weight.copy_(torch.linspace(0.5, 2, 4))
        ref.bias.copy_(torch.linspace(-1, 1, 4))
    y = ref(x)
    (y * up).sum().backward()
    torch.testing.assert_close(torch.cat([r[0]["y"], r[1]["y"]]), y.detach())
    torch.testing.assert_close(torch.cat([r[0]["gx"], r[1]["gx"]]), x.grad)
    # Parameter gradients are per-rank partial sums; DDP adds them up (then averages).
    torch.testing.assert_close(r[0]["gw"] + r[1]["gw"], ref.weight.grad)
    torch.testing.assert_close(r[0]["gb"] + r[1]["gb"], ref.bias.grad)
    for k in range(2):
        torch.testing.assert_close(r[k]["rm"], ref.running_mean)
        torch.testing.assert_close(r[k]["rv"], ref.running_var)
        torch.testing.assert_close(r[k]["gathered"], x.detach() * 2)
    assert (r[0]["offset"], r[1]["offset"]) == (0, SIZES[0])


def test_single_process_distributed_batchnorm_is_batchnorm(seed):
    x, _ = _data(seed)
    net = torch.nn.Sequential(torch.nn.Linear(4, 4), torch.nn.BatchNorm1d(4)).double()
    ref = torch.nn.Sequential(torch.nn.Linear(4, 4), torch.nn.BatchNorm1d(4)).double()
    ref.load_state_dict(net.state_dict())
    conv = convert_to_distributed_batchnorm(net)
    assert isinstance(conv[1], DistributedBatchNorm)
    assert set(conv.state_dict()) == set(ref.state_dict())
    torch.testing.assert_close(conv(x), ref(x))
    conv.eval(), ref.eval()
    torch.testing.assert_close(conv(x), ref(x))


def _large_mean_data(seed: int) -> torch.Tensor:
    """float32 features of mean 1e4 (per channel 1e4 + [0, 0.5, 1]) and std 1, 600 + 400 rows."""
    g = torch.Generator().manual_seed(seed)
    return (
        torch.randn(1000, 3, dtype=torch.float64, generator=g) + 1e4 + torch.tensor([0.0, 0.5, 1.0])
    ).float()


def _large_mean_worker(rank: int, seed: int, out_dir: str) -> None:
    x = _large_mean_data(seed)
    lo, hi = (0, 600) if rank == 0 else (600, 1000)
    bn = DistributedBatchNorm(3, momentum=1.0, affine=False)  # momentum 1: running_var = this batch's
    y = bn(x[lo:hi])
    torch.save({"y": y.detach(), "rv": bn.running_var, "rm": bn.running_mean}, f"{out_dir}/rank{rank}.pt")


def test_distributed_batchnorm_variance_with_a_large_mean(tmp_path, seed):
    launch_local(_large_mean_worker, 2, seed, str(tmp_path))
    r = [torch.load(tmp_path / f"rank{i}.pt", weights_only=True) for i in range(2)]
    x = _large_mean_data(seed).double()  # the same float32 values, reduced in float64
    mean, var = x.mean(0), x.var(0, unbiased=False)
    assert torch.all((var - 1).abs() < 0.2)  # the data are what the test claims
    y_ref = (x - mean) / torch.sqrt(var + 1e-5)
    for k in range(2):
        torch.testing.assert_close(r[k]["rv"].double(), x.var(0, unbiased=True), rtol=1e-4, atol=0)
        torch.testing.assert_close(r[k]["rm"].double(), mean, rtol=1e-7, atol=0)
    # float32 holds 1e4 to ~1e-3, so normalized outputs can only match to about that
    torch.testing.assert_close(torch.cat([r[0]["y"], r[1]["y"]]).double(), y_ref, rtol=0, atol=5e-3)
