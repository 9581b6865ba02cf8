"""scatter_to_voxels and gather_from_voxels: values, counts, gradients, determinism and bad input."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from pixvox import ops
from pixvox.ops import reference as ref

REDUCES = ["sum", "mean", "max"]


def random_index(gen: torch.Generator, pixels: int, voxels: int, unused: int = 0) -> torch.Tensor:
    """[P] voxel rows in [0, voxels - unused) with ~10% -1: many pixels per voxel, some voxels empty."""
    index = torch.randint(0, max(voxels - unused, 1), (pixels,), generator=gen)
    index[torch.rand(pixels, generator=gen) < 0.1] = -1
    return index if voxels else torch.full((pixels,), -1, dtype=torch.int64)


@pytest.mark.parametrize("reduce", REDUCES)
def test_scatter_matches_reference_float64(gen, device, reduce):
    index = random_index(gen, 3000, 250, unused=20)
    feats = torch.randn(3000, 7, generator=gen, dtype=torch.float64)
    got = ops.scatter_to_voxels(feats.to(device), index.to(device), 250, reduce)
    want, want_counts = ref.scatter_to_voxels_reference(feats, index, 250, reduce)
    assert torch.equal(got.counts.cpu(), want_counts)
    assert bool((got.counts[-20:] == 0).all())
    torch.testing.assert_close(got.features.cpu(), want, rtol=1e-13, atol=1e-13)
    assert bool((got.features[-20:] == 0).all())


@pytest.mark.parametrize("reduce", REDUCES)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16])
def test_scatter_lower_precision_within_rounding(gen, device, reduce, dtype):
    index = random_index(gen, 4000, 60)
    feats = torch.randn(4000, 5, generator=gen, dtype=torch.float64).to(dtype)
    got = ops.scatter_to_voxels(feats.to(device), index.to(device), 60, reduce).features
    want, counts = ref.scatter_to_voxels_reference(feats.double(), index, 60, reduce)
    assert got.dtype == dtype
    # Sequential float32 accumulation errs by at most (n - 1) u sum|x| (u = eps / 2); the result is then
    # rounded once to the feature dtype. A lost or doubled pixel would be off by ~|x|, far above this.
    abs_sum = ref.scatter_to_voxels_reference(feats.double().abs(), index, 60, "sum")[0]
    n = counts.clamp_min(1).double()[:, None]
    accumulation = torch.finfo(torch.float32).eps * abs_sum * (n if reduce == "sum" else 1.0)
    if reduce == "max":
        accumulation = torch.zeros_like(abs_sum)
    tolerance = accumulation + torch.finfo(dtype).eps * want.abs()
    assert bool(((got.cpu().double() - want).abs() <= tolerance).all())


@pytest.mark.parametrize("reduce", REDUCES)
def test_scatter_counts_and_values_with_several_chunks(gen, reduce):
    """Large enough (P x C >= 2^16) for one pixel chunk per thread, so at 2 threads every voxel is
    reduced by the thread that owns it: the counts and values equal the float64 reference at 1 and
    2 threads, empty voxels included."""
    index = random_index(gen, 20000, 3000, unused=50)
    feats = torch.randn(20000, 8, generator=gen, dtype=torch.float64)
    want, want_counts = ref.scatter_to_voxels_reference(feats, index, 3000, reduce)
    threads = torch.get_num_threads()
    try:
        for n in (1, 2):
            torch.set_num_threads(n)
            got = ops.scatter_to_voxels(feats, index, 3000, reduce)
            assert torch.equal(got.counts, want_counts), f"counts at {n} thread(s)"
            torch.testing.assert_close(
                got.features, want, rtol=1e-13, atol=1e-13, msg=f"values at {n} thread(s)"
            )
            assert bool((got.features[-50:] == 0).all())
    finally:
        torch.set_num_threads(threads)


def test_scatter_sum_is_in_pixel_order_for_any_thread_count(gen):
    """Bitwise equal to a sequential float32 sum in pixel order, with 1 to 4 threads (as many pixel
    chunks, so a voxel's pixels lie in up to 4 of them)."""
    pixels, voxels, channels = 40000, 5, 4  # enough work for one pixel chunk per thread
    index = random_index(gen, pixels, voxels)
    feats = (torch.randn(pixels, channels, generator=gen) * 10).float()
    f, idx = feats.numpy(), index.numpy()
    want_sum = np.zeros((voxels, channels), dtype=np.float32)
    for v in range(voxels):
        rows = f[idx == v]
        want_sum[v] = np.cumsum(rows, axis=0, dtype=np.float32)[-1]  # cumsum adds strictly in order
    want_mean = want_sum / np.bincount(idx[idx >= 0], minlength=voxels)[:, None].astype(np.float32)
    threads = torch.get_num_threads()
    try:
        for n in sorted({1, 2, 3, 4, threads}):
            torch.set_num_threads(n)
            assert np.array_equal(
                ops.scatter_to_voxels(feats, index, voxels, "sum").features.numpy(), want_sum
            )
            assert np.array_equal(
                ops.scatter_to_voxels(feats, index, voxels, "mean").features.numpy(), want_mean
            )
    finally:
        torch.set_num_threads(threads)


@pytest.mark.parametrize("reduce", REDUCES)
def test_scatter_repeatable(gen, device, reduce):
    index = random_index(gen, 50000, 300).to(device)
    feats = torch.randn(50000, 16, generator=gen).to(device)
    first = ops.scatter_to_voxels(feats, index, 300, reduce)
    for _ in range(2):
        again = ops.scatter_to_voxels(feats, index, 300, reduce)
        assert torch.equal(first.features, again.features) and torch.equal(first.counts, again.counts)


def test_scatter_max_hand_computed(device):
    feats = torch.tensor(
        [[1.0, 0.0], [3.0, math.nan], [3.0, 2.0], [2.0, -1.0], [7.0, 7.0]], requires_grad=True
    )
    index = torch.tensor([0, 0, 0, 1, -1])
    got = ops.scatter_to_voxels(feats.to(device), index.to(device), 3, "max")
    values = got.features.detach().cpu()
    # voxel 0: channel 0 max 3 (pixels 1 and 2 tie, first wins), channel 1 NaN propagates; voxel 2 empty.
    assert values[0, 0] == 3.0 and math.isnan(float(values[0, 1]))
    assert values[1:].tolist() == [[2.0, -1.0], [0.0, 0.0]]
    assert got.counts.tolist() == [3, 1, 0]
    got.features.backward(torch.ones_like(got.features))  # NaN-safe upstream gradient
    assert feats.grad.tolist() == [[0.0, 0.0], [1.0, 1.0], [0.0, 0.0], [1.0, 1.0], [0.0, 0.0]]


def test_scatter_empty_cases(device):
    feats = torch.randn(5, 3, device=device)
    none = torch.full((5,), -1, dtype=torch.int64, device=device)
    for reduce in REDUCES:
        out = ops.scatter_to_voxels(feats, none, 4, reduce)
        assert (
            out.features.shape == (4, 3) and bool((out.features == 0).all()) and bool((out.counts == 0).all())
        )
        assert ops.scatter_to_voxels(feats, none, 0, reduce).features.shape == (0, 3)
        empty = ops.scatter_to_voxels(feats[:0], none[:0], 4, reduce)
        assert empty.features.shape == (4, 3) and bool((empty.features == 0).all())
    assert ops.gather_from_voxels(feats, none).abs().sum() == 0
    assert ops.gather_from_voxels(feats, none[:0]).shape == (0, 3)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32, torch.float16, torch.int64, torch.bool])
def test_gather_matches_reference(gen, device, dtype):
    voxel_feats = (torch.randn(40, 6, generator=gen) * 5).to(dtype)
    index = random_index(gen, 500, 40)
    got = ops.gather_from_voxels(voxel_feats.to(device), index.to(device))
    assert got.dtype == dtype
    assert torch.equal(got.cpu(), ref.gather_from_voxels_reference(voxel_feats, index))
    assert bool((got[index.to(device) < 0] == 0).all())


@pytest.mark.parametrize("reduce", REDUCES)
def test_scatter_gradcheck(gen, device, reduce):
    index = random_index(gen, 40, 7, unused=1).to(device)
    feats = torch.randn(40, 3, generator=gen, dtype=torch.float64).to(device).requires_grad_()
    fn = lambda x: ops.scatter_to_voxels(x, index, 7, reduce).features  # noqa: E731
    assert torch.autograd.gradcheck(fn, (feats,))
    if reduce != "max":  # max is piecewise linear: its second derivative is zero almost everywhere
        assert torch.autograd.gradgradcheck(fn, (feats,))


def test_gather_gradcheck(gen, device):
    index = random_index(gen, 50, 8, unused=2).to(device)
    voxel_feats = torch.randn(8, 3, generator=gen, dtype=torch.float64).to(device).requires_grad_()
    fn = lambda x: ops.gather_from_voxels(x, index)  # noqa: E731
    assert torch.autograd.gradcheck(fn, (voxel_feats,))
    assert torch.autograd.gradgradcheck(fn, (voxel_feats,))


@pytest.mark.parametrize("reduce", REDUCES)
def test_gradients_match_reference_autograd(gen, device, reduce):
    index = random_index(gen, 2000, 90, unused=5)
    feats = torch.randn(2000, 4, generator=gen, dtype=torch.float64)  # continuous: no ties for max
    weights = torch.randn(90, 4, generator=gen, dtype=torch.float64)
    x = feats.clone().to(device).requires_grad_()
    (ops.scatter_to_voxels(x, index.to(device), 90, reduce).features * weights.to(device)).sum().backward()
    y = feats.clone().requires_grad_()
    (ref.scatter_to_voxels_reference(y, index, 90, reduce)[0] * weights).sum().backward()
    torch.testing.assert_close(x.grad.cpu(), y.grad, rtol=1e-13, atol=1e-13)

    voxel_feats = torch.randn(90, 4, generator=gen, dtype=torch.float64)
    upstream = torch.randn(2000, 4, generator=gen, dtype=torch.float64)
    a = voxel_feats.clone().to(device).requires_grad_()
    (ops.gather_from_voxels(a, index.to(device)) * upstream.to(device)).sum().backward()
    b = voxel_feats.clone().requires_grad_()
    (ref.gather_from_voxels_reference(b, index) * upstream).sum().backward()
    torch.testing.assert_close(a.grad.cpu(), b.grad, rtol=1e-13, atol=1e-13)


def test_bad_input_raises():
    feats = torch.randn(4, 2)
    with pytest.raises(IndexError, match="outside"):
        ops.scatter_to_voxels(feats, torch.tensor([0, 1, 5, 0]), 5)
    with pytest.raises(IndexError, match="outside"):
        ops.scatter_to_voxels(feats, torch.tensor([0, -2, 1, 0]), 5)
    with pytest.raises(IndexError, match="outside"):
        ops.gather_from_voxels(feats, torch.tensor([0, 4]))
    with pytest.raises(ValueError, match=r"voxel_index must be \[4\]"):
        ops.scatter_to_voxels(feats, torch.tensor([0, 1]), 5)
    with pytest.raises(TypeError, match="integer"):
        ops.scatter_to_voxels(feats, torch.zeros(4), 5)
    with pytest.raises(ValueError, match="reduce must be one of"):
        ops.scatter_to_voxels(feats, torch.zeros(4, dtype=torch.int64), 5, "median")
    with pytest.raises(TypeError, match="floating point"):
        ops.scatter_to_voxels(torch.ones(4, 2, dtype=torch.int64), torch.zeros(4, dtype=torch.int64), 5)
    with pytest.raises(ValueError, match=r"\[P, C\]"):
        ops.scatter_to_voxels(torch.ones(4), torch.zeros(4, dtype=torch.int64), 5)
    with pytest.raises(ValueError, match="num_voxels"):
        ops.scatter_to_voxels(feats, torch.zeros(4, dtype=torch.int64), -1)
    with pytest.raises(ValueError, match=r"\[V, C\]"):
        ops.gather_from_voxels(torch.ones(4), torch.zeros(4, dtype=torch.int64))


@pytest.mark.cuda
@pytest.mark.parametrize("reduce", REDUCES)
def test_cuda_scatter_matches_cpu_bitwise(gen, reduce):
    index = random_index(gen, 30000, 500)
    feats = torch.randn(30000, 24, generator=gen)
    cpu = ops.scatter_to_voxels(feats, index, 500, reduce)
    gpu = ops.scatter_to_voxels(feats.cuda(), index.cuda(), 500, reduce)
    assert torch.equal(cpu.counts, gpu.counts.cpu())
    assert torch.equal(cpu.features, gpu.features.cpu())
