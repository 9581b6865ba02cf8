"""CPU threading of the patched engine: the thread count stays the user's, and the parallel
convolution kernels (patch 0012) give the float64 dense reference, the same at 1 and 2 threads, with
repeats bit-identical at 1 thread and equal to rounding at 2.

The inputs are large enough (~9k voxels, 8 channels) to take the kernels' parallel path, which small
layers skip.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest
import torch
import torch.nn.functional as F

from pixvox.sparse import ME

GRID = 24


def test_sparse_tensor_keeps_the_thread_count():
    """Patch 0011: creating a SparseTensor no longer resets OpenMP to every core."""
    code = textwrap.dedent(
        """
        import torch, MinkowskiEngine as ME
        torch.set_num_threads(1)
        ME.SparseTensor(torch.ones(2, 1), coordinates=torch.tensor([[0, 0, 0, 0], [0, 1, 0, 0]], dtype=torch.int32))
        print(torch.get_num_threads())
        ME.CoordinateManager(D=3, num_threads=2)  # an explicit count is still applied
        print(torch.get_num_threads())
        """
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.split() == ["1", "2"]


def _input(seed: int, channels: int):
    gen = torch.Generator().manual_seed(seed)
    mask = torch.rand(GRID, GRID, GRID, generator=gen) < 0.6
    pts = mask.nonzero().int()
    coords = torch.cat([torch.zeros(len(pts), 1, dtype=torch.int32), pts], 1)
    feats = torch.randn(len(pts), channels, dtype=torch.float64, generator=gen)
    weight = torch.randn(27, channels, channels + 1, dtype=torch.float64, generator=gen)
    upstream = torch.randn(len(pts), channels + 1, dtype=torch.float64, generator=gen)
    return coords, feats, weight, upstream


def _engine(coords, feats, weight, upstream, threads: int, transpose: bool = False):
    torch.set_num_threads(threads)
    f = feats.clone().requires_grad_()
    cls = ME.MinkowskiConvolutionTranspose if transpose else ME.MinkowskiConvolution
    conv = cls(weight.shape[1], weight.shape[2], kernel_size=3, bias=False, dimension=3).double()
    with torch.no_grad():
        conv.kernel.copy_(weight)
    out = conv(ME.SparseTensor(f, coordinates=coords))
    # same coordinates, same row order as the input at stride 1
    assert torch.equal(out.C, coords)
    g_feat, g_w = torch.autograd.grad((out.F * upstream).sum(), [f, conv.kernel])
    return out.F.detach(), g_feat, g_w


def _dense_reference(coords, feats, weight, upstream, transpose: bool = False):
    """conv3d on the dense grid; kernel offset index x-fastest, offsets -1..1 (the engine's order)."""
    w = weight
    if transpose:  # a stride-1 transposed convolution uses the mirrored offsets
        w = torch.flip(weight.reshape(3, 3, 3, *weight.shape[1:]), dims=(0, 1, 2)).reshape(weight.shape)
    w_dense = (
        w.reshape(3, 3, 3, w.shape[1], w.shape[2]).permute(4, 3, 2, 1, 0).contiguous()
    )  # [out, in, x, y, z]
    w_dense.requires_grad_()
    f = feats.clone().requires_grad_()
    c = coords[:, 1:].long()
    grid = torch.zeros(GRID, GRID, GRID, f.shape[1], dtype=torch.float64)
    grid = grid.index_put((c[:, 0], c[:, 1], c[:, 2]), f)  # index_put takes tensors only, no slices
    dense = grid.permute(3, 0, 1, 2).unsqueeze(0)  # [1, C, x, y, z]
    y = F.conv3d(dense, w_dense, padding=1)
    out = y[0, :, c[:, 0], c[:, 1], c[:, 2]].T
    g_feat, g_wd = torch.autograd.grad((out * upstream).sum(), [f, w_dense])
    g_w = g_wd.permute(4, 3, 2, 1, 0).reshape(weight.shape)
    if transpose:
        g_w = torch.flip(g_w.reshape(3, 3, 3, *weight.shape[1:]), dims=(0, 1, 2)).reshape(weight.shape)
    return out.detach(), g_feat, g_w


@pytest.mark.parametrize("transpose", [False, True], ids=["conv", "transposed"])
def test_parallel_convolution_matches_the_dense_reference(seed, transpose):
    threads = torch.get_num_threads()
    try:
        args = _input(seed, channels=8)
        ref = _dense_reference(*args, transpose=transpose)
        for t in (1, 2):
            got = _engine(*args, threads=t, transpose=transpose)
            for g, r, what in zip(got, ref, ("forward", "input gradient", "weight gradient")):
                torch.testing.assert_close(g, r, rtol=1e-10, atol=1e-10, msg=f"{what} at {t} threads")
    finally:
        torch.set_num_threads(threads)


def test_parallel_convolution_repeats(seed):
    """One thread: bit-identical repeats. Two threads: repeats agree to float64 rounding, not bit for
    bit (measured up to 2e-13 on the weight gradient: which BLAS block a row falls in moves between
    runs, and with it the rounding of that row's products)."""
    threads = torch.get_num_threads()
    try:
        args = _input(seed, channels=8)
        for t in (1, 2):
            first = _engine(*args, threads=t)
            for _ in range(2):
                again = _engine(*args, threads=t)
                for a, b, what in zip(first, again, ("forward", "input gradient", "weight gradient")):
                    if t == 1:
                        assert torch.equal(a, b), f"{what} at 1 thread"
                    else:
                        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12, msg=f"{what} at 2 threads")
    finally:
        torch.set_num_threads(threads)
