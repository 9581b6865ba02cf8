"""CPU threading of the patched engine: the thread count stays the user's, the kernel map (patch
0013) holds a brute-force neighbour search's pairs in the same order at 1 and 2 threads, and the
parallel convolution kernels (patch 0012) give the float64 dense reference at 1 and 2 threads, with
repeats bit-identical at both.

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
    """Bit-identical repeats at 1 and at 2 threads. (Before patch 0013, repeats at 2 threads differed
    in the last bits of the weight gradient: the kernel map's pair order followed the threads'
    timing, and with it which rows each thread's partial sum held.)"""
    threads = torch.get_num_threads()
    try:
        args = _input(seed, channels=8)
        for t in (1, 2):
            first = _engine(*args, threads=t)
            for _ in range(2):
                again = _engine(*args, threads=t)
                for a, b, what in zip(first, again, ("forward", "input gradient", "weight gradient")):
                    assert torch.equal(a, b), f"{what} at {t} thread(s)"
    finally:
        torch.set_num_threads(threads)


def _brute_force_pairs(coords: torch.Tensor) -> dict[int, set[tuple[int, int]]]:
    """{offset index: {(input row, output row)}} of a stride-1, size-3 kernel on ``coords`` [N, 4],
    by a dictionary lookup of every output point's 27 neighbours (offset index x-fastest)."""
    row_of = {tuple(c): i for i, c in enumerate(coords[:, 1:].tolist())}
    pairs: dict[int, set[tuple[int, int]]] = {k: set() for k in range(27)}
    for out_row, (x, y, z) in enumerate(coords[:, 1:].tolist()):
        for k in range(27):
            dx, dy, dz = k % 3 - 1, (k // 3) % 3 - 1, k // 9 - 1
            in_row = row_of.get((x + dx, y + dy, z + dz))
            if in_row is not None:
                pairs[k].add((in_row, out_row))
    return pairs


def test_kernel_map_is_the_same_at_1_and_2_threads(seed):
    """Every offset's pairs are the brute-force neighbour pairs, listed in the same order at 1 and 2
    threads (patch 0013 joins per-chunk lists in chunk order instead of claiming slots with a
    shared atomic counter)."""
    threads = torch.get_num_threads()
    coords = _input(seed, channels=1)[0]
    expected = {k: p for k, p in _brute_force_pairs(coords).items() if p}  # the engine lists no empty offset
    try:
        maps = {}
        for t in (1, 2):
            torch.set_num_threads(t)
            x = ME.SparseTensor(torch.ones(len(coords), 1), coordinates=coords)
            m = x.coordinate_manager.kernel_map(x.coordinate_map_key, x.coordinate_map_key, kernel_size=3)
            maps[t] = {int(k): v.long() for k, v in m.items()}
            got = {k: set(map(tuple, v.T.tolist())) for k, v in maps[t].items()}
            assert got == expected, f"kernel map at {t} thread(s) differs from the brute-force pairs"
        assert maps[1].keys() == maps[2].keys()
        for k in maps[1]:
            assert torch.equal(maps[1][k], maps[2][k]), (
                f"offset {k}: pair order differs between 1 and 2 threads"
            )
    finally:
        torch.set_num_threads(threads)
