"""MinkowskiEngine convolutions (through pixvox.sparse) against dense torch conv3d references in float64.

Each test draws fresh random sparse inputs; the dense reference scatters them into a zero grid, runs
``torch.nn.functional.conv3d`` / ``conv_transpose3d`` with the same weights rearranged, and reads the
result back at the sparse output coordinates. Forward values and the gradients of features and weights
must agree to float64 rounding.
"""

from __future__ import annotations

import itertools
import subprocess
import sys
from types import SimpleNamespace

import pytest
import torch
import torch.nn.functional as F

from pixvox.sparse import (
    ME,
    EmptySparseTensorError,
    RowMappingError,
    batched_coordinates,
    check_not_empty,
    features_in_input_order,
    sparse_tensor,
)

GRID = 10  # voxels per axis of the dense reference grid
#: MinkowskiEngine runs on each device; the dense float64 reference always runs on the CPU.
DEVICES = pytest.mark.parametrize("device", ["cpu", pytest.param("cuda", marks=pytest.mark.cuda)])


def kernel_offsets(kernel_size: int) -> list[tuple[int, int, int]]:
    """Offsets of MinkowskiEngine's hyper-cube kernel in weight order: x varies fastest.

    Odd kernels are centred (-k//2 .. k//2); even kernels start at 0 (0 .. k-1).
    """
    lo = -(kernel_size // 2) if kernel_size % 2 else 0
    rng = range(lo, lo + kernel_size)
    return [(x, y, z) for z, y, x in itertools.product(rng, rng, rng)]


def dense_weight(w_me: torch.Tensor, kernel_size: int) -> torch.Tensor:
    """ME weight ``[K^3, Cin, Cout]`` → conv3d weight ``[Cout, Cin, k, k, k]`` indexed by offset - lo."""
    lo = -(kernel_size // 2) if kernel_size % 2 else 0
    if w_me.ndim == 2:  # ME stores a 1x1x1 kernel as [Cin, Cout]
        w_me = w_me[None]
    cin, cout = w_me.shape[1:]
    rows = []
    for x, y, z in itertools.product(range(kernel_size), repeat=3):
        rows.append(w_me[kernel_offsets(kernel_size).index((x + lo, y + lo, z + lo))])
    return torch.stack(rows).reshape(kernel_size, kernel_size, kernel_size, cin, cout).permute(4, 3, 0, 1, 2)


def random_sparse(gen: torch.Generator, batch: int, channels: int, fill: float = 0.15):
    """Unique random voxels in [0, GRID)^3 per sample; returns batched coords [N,4] and features [N,C]."""
    coords = []
    for _ in range(batch):
        mask = torch.rand(GRID, GRID, GRID, generator=gen) < fill
        mask.view(-1)[torch.randint(GRID**3, (1,), generator=gen)] = True  # never empty
        coords.append(mask.nonzero().int())
    bc = batched_coordinates(coords)
    feats = torch.randn(bc.shape[0], channels, generator=gen, dtype=torch.float64)
    return bc, feats


def to_dense(coords: torch.Tensor, feats: torch.Tensor, batch: int, stride: int = 1) -> torch.Tensor:
    g = GRID // stride
    dense = torch.zeros(batch, feats.shape[1], g, g, g, dtype=feats.dtype)
    c = coords.long()
    dense[c[:, 0], :, c[:, 1] // stride, c[:, 2] // stride, c[:, 3] // stride] = feats
    return dense


def read_dense(dense: torch.Tensor, coords: torch.Tensor, stride: int) -> torch.Tensor:
    c = coords.long()
    return dense[c[:, 0], :, c[:, 1] // stride, c[:, 2] // stride, c[:, 3] // stride]


@DEVICES
@pytest.mark.parametrize(
    "kernel_size,stride",
    [(3, 1), (1, 1), (2, 2), (3, 2)],
)
def test_convolution_matches_dense(seed, kernel_size, stride, device):
    gen = torch.Generator().manual_seed(seed)
    batch, cin, cout = 2, 3, 4
    coords, feats = random_sparse(gen, batch, cin)
    feats.requires_grad_(True)
    conv = ME.MinkowskiConvolution(cin, cout, kernel_size=kernel_size, stride=stride, bias=False, dimension=3)
    conv = conv.double()
    with torch.no_grad():
        conv.kernel.copy_(torch.randn(conv.kernel.shape, generator=gen, dtype=torch.float64))
    conv = conv.to(device)
    out_dev = conv(sparse_tensor(feats.to(device), coords.to(device), device=device))
    out = SimpleNamespace(F=out_dev.F.cpu(), C=out_dev.C.cpu(), tensor_stride=out_dev.tensor_stride)
    assert out.tensor_stride == [stride] * 3
    # Output coordinates: the input voxels rounded down to multiples of the stride.
    expected = torch.unique(torch.cat([coords[:, :1], coords[:, 1:] // stride * stride], 1), dim=0)
    got = torch.unique(out.C, dim=0)
    assert torch.equal(got, expected)

    w_dense = dense_weight(conv.kernel.detach().cpu(), kernel_size).clone().requires_grad_(True)
    x_dense = to_dense(coords, feats, batch)
    lo = -(kernel_size // 2) if kernel_size % 2 else 0
    pad_lo, pad_hi = -lo, kernel_size - 1 + lo
    y_dense = F.conv3d(F.pad(x_dense, (pad_lo, pad_hi) * 3), w_dense, stride=stride)
    ref = read_dense(y_dense, out.C, stride)
    torch.testing.assert_close(out.F, ref, rtol=1e-10, atol=1e-10)

    # Backward: same upstream gradient on both sides.
    upstream = torch.randn(out.F.shape, generator=gen, dtype=torch.float64)
    g_feat, g_w = torch.autograd.grad((out_dev.F * upstream.to(device)).sum(), [feats, conv.kernel])
    g_w = g_w.cpu()
    feats_ref = feats.detach().clone().requires_grad_(True)
    y_ref = F.conv3d(F.pad(to_dense(coords, feats_ref, batch), (pad_lo, pad_hi) * 3), w_dense, stride=stride)
    r_feat, r_w = torch.autograd.grad(
        (read_dense(y_ref, out.C, stride) * upstream).sum(), [feats_ref, w_dense]
    )
    torch.testing.assert_close(g_feat, r_feat, rtol=1e-10, atol=1e-10)
    torch.testing.assert_close(dense_weight(g_w, kernel_size), r_w, rtol=1e-10, atol=1e-10)


@DEVICES
@pytest.mark.parametrize("kernel_size", [2, 3])
def test_transposed_convolution_matches_dense(seed, kernel_size, device):
    gen = torch.Generator().manual_seed(seed)
    batch, cin, cout, stride = 2, 3, 2, 2
    coords, feats = random_sparse(gen, batch, cin)
    x = sparse_tensor(feats.to(device), coords.to(device), device=device)
    down = ME.MinkowskiConvolution(cin, cin, kernel_size=2, stride=2, bias=False, dimension=3).double()
    with torch.no_grad():
        down.kernel.copy_(torch.randn(down.kernel.shape, generator=gen, dtype=torch.float64))
    coarse = down.to(device)(x)
    coarse_coords = coarse.C.cpu()
    coarse_f = coarse.F.detach().clone().requires_grad_(True)
    coarse_in = ME.SparseTensor(
        coarse_f, coordinate_map_key=coarse.coordinate_map_key, coordinate_manager=coarse.coordinate_manager
    )
    up = ME.MinkowskiConvolutionTranspose(
        cin, cout, kernel_size=kernel_size, stride=stride, bias=False, dimension=3
    ).double()
    with torch.no_grad():
        up.kernel.copy_(torch.randn(up.kernel.shape, generator=gen, dtype=torch.float64))
    up = up.to(device)
    out_dev = up(coarse_in)
    out = SimpleNamespace(F=out_dev.F.cpu(), C=out_dev.C.cpu())
    assert out_dev.tensor_stride == [1, 1, 1]

    # Dense reference: a transposed conv scatters each coarse voxel through the kernel; read it back at
    # the fine output voxels. Offsets of the transposed kernel are the same as the forward kernel's.
    lo = -(kernel_size // 2) if kernel_size % 2 else 0
    w_dense = (
        dense_weight(up.kernel.detach().cpu(), kernel_size)
        .permute(1, 0, 2, 3, 4)
        .clone()
        .requires_grad_(True)
    )

    def reference(cf: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        xd = to_dense(coarse_coords, cf, batch, stride=stride)
        y = F.conv_transpose3d(xd, w, stride=stride)  # y[2i + o] += W[o] x[i], o in 0..k-1
        # shift by lo so that index 2i + o corresponds to coordinate 2i + o + lo, then crop to the grid
        full = torch.zeros(batch, cout, GRID, GRID, GRID, dtype=y.dtype)
        src = [slice(max(0, -lo), max(0, -lo) + GRID)] * 3
        y = F.pad(y, (max(0, lo), GRID) * 3)[:, :, src[0], src[1], src[2]]
        full += y[:, :, :GRID, :GRID, :GRID]
        return read_dense(full, out.C, 1)

    ref = reference(coarse_f.detach().cpu(), w_dense.detach())
    torch.testing.assert_close(out.F, ref, rtol=1e-10, atol=1e-10)

    upstream = torch.randn(out.F.shape, generator=gen, dtype=torch.float64)
    g_feat, g_w = torch.autograd.grad((out_dev.F * upstream.to(device)).sum(), [coarse_f, up.kernel])
    g_feat, g_w = g_feat.cpu(), g_w.cpu()
    cf_ref = coarse_f.detach().cpu().clone().requires_grad_(True)
    r_feat, r_w = torch.autograd.grad((reference(cf_ref, w_dense) * upstream).sum(), [cf_ref, w_dense])
    torch.testing.assert_close(g_feat, r_feat, rtol=1e-10, atol=1e-10)
    torch.testing.assert_close(
        dense_weight(g_w, kernel_size).permute(1, 0, 2, 3, 4), r_w, rtol=1e-10, atol=1e-10
    )


def test_empty_sparse_tensor_is_refused():
    empty_c = torch.zeros(0, 4, dtype=torch.int32)
    with pytest.raises(EmptySparseTensorError, match="no valid voxels"):
        sparse_tensor(torch.zeros(0, 3), empty_c)
    with pytest.raises(EmptySparseTensorError):
        check_not_empty(empty_c)
    with pytest.raises(EmptySparseTensorError):
        batched_coordinates([])


def test_sparse_tensor_validates_inputs():
    c = torch.tensor([[0, 1, 2, 3]], dtype=torch.int32)
    with pytest.raises(ValueError, match=r"\[N, 4\]"):
        sparse_tensor(torch.zeros(1, 3), c[:, :3])
    with pytest.raises(ValueError, match="rows"):
        sparse_tensor(torch.zeros(2, 3), c)
    with pytest.raises(TypeError, match="floating point"):
        sparse_tensor(torch.zeros(1, 3, dtype=torch.int64), c)
    with pytest.raises(TypeError, match="int32"):
        sparse_tensor(torch.zeros(1, 3), c.float())
    x = sparse_tensor(torch.ones(1, 3), c.long())  # int64 coordinates are accepted and converted
    assert x.C.dtype == torch.int32


def test_import_pixvox_then_minkowskiengine_in_a_fresh_interpreter():
    """`import pixvox, MinkowskiEngine` works on Python >= 3.10 (patch 0001: collections.abc.Sequence)."""
    code = "import pixvox, MinkowskiEngine; print(MinkowskiEngine.__version__)"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "0.5.4"


def shuffled_rows(gen: torch.Generator, channels: int, duplicates: bool = True):
    """Random unique voxels, shuffled; with ``duplicates`` a quarter of them repeated (same features)
    and shuffled again."""
    coords, feats = random_sparse(gen, 2, channels)
    rows = torch.randperm(coords.shape[0], generator=gen)
    if duplicates:
        rows = torch.cat([rows, rows[torch.randint(rows.shape[0], (rows.shape[0] // 4,), generator=gen)]])
        rows = rows[torch.randperm(rows.shape[0], generator=gen)]
    return coords[rows], feats[rows]


def dense_conv3_at(coords: torch.Tensor, feats: torch.Tensor, kernel: torch.Tensor) -> torch.Tensor:
    """Reference: 3x3x3 convolution on the dense grid, read at ``coords`` in their given order."""
    y = F.conv3d(F.pad(to_dense(coords, feats, 2), (1, 1) * 3), dense_weight(kernel, 3))
    return read_dense(y, coords, 1)


def conv3(gen: torch.Generator, cin: int, cout: int) -> ME.MinkowskiConvolution:
    conv = ME.MinkowskiConvolution(cin, cout, kernel_size=3, bias=False, dimension=3).double()
    with torch.no_grad():
        conv.kernel.copy_(torch.randn(conv.kernel.shape, generator=gen, dtype=torch.float64))
    return conv


@DEVICES
def test_features_in_input_order_matches_dense_reference_on_input_rows(seed, device):
    """Real MinkowskiEngine output, mapped to shuffled input rows with duplicates, against conv3d."""
    gen = torch.Generator().manual_seed(seed)
    coords, feats = shuffled_rows(gen, 3)
    conv = conv3(gen, 3, 4)
    x = sparse_tensor(feats.to(device), coords.to(device), device=device)
    got = features_in_input_order(conv.to(device)(x), x).cpu()
    assert got.shape == (coords.shape[0], 4)
    ref = dense_conv3_at(coords, feats, conv.kernel.detach().cpu())
    torch.testing.assert_close(got, ref, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("duplicates", [False, True])
def test_a_row_permuting_engine_is_undone(seed, engine_permutes_rows, duplicates):
    """With the engine storing rows shuffled (as the CUDA map does), ``out.F`` is out of input order;
    the mapping puts every feature back on its input row."""
    gen = torch.Generator().manual_seed(seed)
    coords, feats = shuffled_rows(gen, 3, duplicates)
    conv = conv3(gen, 3, 4)
    x = sparse_tensor(feats, coords)
    assert engine_permutes_rows, "the fixture did not take effect"
    out = conv(x)
    ref = dense_conv3_at(coords, feats, conv.kernel.detach())
    # out.F follows the engine's map (x.C), which is not the input order: reading it by input row,
    # as the code once did, gives other voxels' features.
    torch.testing.assert_close(out.F, dense_conv3_at(x.C, x.F, conv.kernel.detach()), rtol=1e-10, atol=1e-10)
    if not duplicates:
        assert out.F.shape == ref.shape and not torch.allclose(out.F, ref)
    torch.testing.assert_close(features_in_input_order(out, x), ref, rtol=1e-10, atol=1e-10)


def test_an_output_on_another_coordinate_map_is_matched_by_coordinates(seed):
    """A network that returns a new sparse tensor (own manager, rows and coordinates permuted
    together) still lands every feature, and its gradient, on its input row."""
    gen = torch.Generator().manual_seed(seed)
    coords, feats = shuffled_rows(gen, 2, duplicates=False)
    conv = conv3(gen, 2, 3)
    feats_g = feats.clone().requires_grad_(True)
    x = sparse_tensor(feats_g, coords)
    out = conv(x)
    perm = torch.randperm(out.F.shape[0], generator=gen)
    moved = ME.SparseTensor(out.F[perm], coordinates=out.C[perm])
    assert moved.coordinate_manager is not x.coordinate_manager
    got = features_in_input_order(moved, x)
    feats_r = feats.clone().requires_grad_(True)
    ref = dense_conv3_at(coords, feats_r, conv.kernel.detach())
    torch.testing.assert_close(got, ref, rtol=1e-10, atol=1e-10)
    upstream = torch.randn(ref.shape, generator=gen, dtype=torch.float64)
    (g,) = torch.autograd.grad((got * upstream).sum(), [feats_g])
    (r,) = torch.autograd.grad((ref * upstream).sum(), [feats_r])
    torch.testing.assert_close(g, r, rtol=1e-10, atol=1e-10)


def test_row_mapping_refuses_outputs_it_cannot_map(seed):
    gen = torch.Generator().manual_seed(seed)
    coords, feats = random_sparse(gen, 1, 2)
    x = sparse_tensor(feats, coords)
    down = ME.MinkowskiConvolution(2, 2, kernel_size=2, stride=2, dimension=3).double()(x)
    with pytest.raises(RowMappingError, match="stride"):
        features_in_input_order(down, x)
    partial = ME.SparseTensor(x.F[1:], coordinates=x.C[1:])
    with pytest.raises(RowMappingError, match="1 of .* absent"):
        features_in_input_order(partial, x)
