"""MinkowskiEngine convolutions on the device against a dense float64 reference on the CPU.

A sparse input is scattered into a zero dense grid; ``torch.nn.functional.conv3d`` (or
``conv_transpose3d``) with the same weights, rearranged, gives the reference, read back at the
sparse output coordinates. Forward values and the gradients of input features and kernel must agree
to float64 rounding. A wrong build (bad kernel maps, wrong BLAS, a miscompiled CUDA kernel) shows
here as an error many orders of magnitude above the tolerance.

Also checks that :func:`pixvox.sparse.features_in_input_order` returns row ``i`` for input
coordinate ``i`` on the device, whatever order MinkowskiEngine's coordinate map keeps.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from pixvox.selftest.report import CheckResult, Comparison, compare, judge
from pixvox.sparse import ME, batched_coordinates, features_in_input_order, sparse_tensor

GRID = 8  #: voxels per axis of the dense grid (even, so stride-2 coordinates stay inside)
RTOL = ATOL = 1e-10  #: float64 on both sides: any real error is many orders larger
CONV_CASES = ((3, 1), (1, 1), (2, 2), (3, 2))  #: (kernel size, stride) of the forward convolutions
TRANSPOSED_KERNELS = (2, 3)  #: kernel sizes of the stride-2 transposed convolutions
TOL_TEXT = f"tol {ATOL:.0e}"


def kernel_lo(kernel_size: int) -> int:
    """First offset of MinkowskiEngine's hyper-cube kernel: odd kernels are centred, even start at 0."""
    return -(kernel_size // 2) if kernel_size % 2 else 0


def dense_kernel(w: torch.Tensor, kernel_size: int) -> torch.Tensor:
    """ME kernel ``[k^3, Cin, Cout]`` (``[Cin, Cout]`` for k = 1) → ``[Cout, Cin, k, k, k]`` over (x, y, z).

    ME orders the offsets with x fastest, so row ``(z * k + y) * k + x`` holds offset ``(x, y, z) + lo``.
    """
    if w.ndim == 2:
        w = w[None]
    k = kernel_size
    cin, cout = w.shape[1], w.shape[2]
    return w.permute(2, 1, 0).reshape(cout, cin, k, k, k).permute(0, 1, 4, 3, 2)


def random_voxels(gen: torch.Generator, batch: int, fill: float = 0.2) -> torch.Tensor:
    """Unique voxels in ``[0, GRID)^3`` per sample, never empty: ``[N, 4]`` int32 (batch, x, y, z)."""
    coords = []
    for _ in range(batch):
        mask = torch.rand(GRID, GRID, GRID, generator=gen) < fill
        mask.view(-1)[int(torch.randint(GRID**3, (1,), generator=gen))] = True
        coords.append(mask.nonzero().int())
    return batched_coordinates(coords)


def to_dense(coords: torch.Tensor, feats: torch.Tensor, batch: int, stride: int = 1) -> torch.Tensor:
    """Scatter ``[N, C]`` features at stride-``stride`` coordinates into ``[B, C, G/s, G/s, G/s]``."""
    g = GRID // stride
    dense = feats.new_zeros(batch, feats.shape[1], g, g, g)
    c = coords.long()
    dense[c[:, 0], :, c[:, 1] // stride, c[:, 2] // stride, c[:, 3] // stride] = feats
    return dense


def read_dense(dense: torch.Tensor, coords: torch.Tensor, stride: int, shift: int = 0) -> torch.Tensor:
    """Rows of a dense ``[B, C, ...]`` grid at coordinates ``coords // stride + shift``."""
    c = coords.long()
    return dense[c[:, 0], :, c[:, 1] // stride + shift, c[:, 2] // stride + shift, c[:, 3] // stride + shift]


def _grads(out: torch.Tensor, upstream: torch.Tensor, wrt: list[torch.Tensor]) -> tuple[torch.Tensor, ...]:
    return torch.autograd.grad((out * upstream.to(out.device)).sum(), wrt)


def conv_case(device: torch.device, gen: torch.Generator, kernel_size: int, stride: int) -> list[Comparison]:
    """One forward convolution: values and both gradients against ``conv3d`` in float64."""
    batch, cin, cout = 2, 3, 4
    coords = random_voxels(gen, batch)
    feats = torch.randn(coords.shape[0], cin, generator=gen, dtype=torch.float64)
    conv = ME.MinkowskiConvolution(cin, cout, kernel_size=kernel_size, stride=stride, bias=False, dimension=3)
    conv = conv.double()
    with torch.no_grad():
        conv.kernel.copy_(torch.randn(conv.kernel.shape, generator=gen, dtype=torch.float64))
    conv = conv.to(device)
    x_f = feats.to(device).requires_grad_(True)
    out = conv(sparse_tensor(x_f, coords.to(device), device=str(device)))
    out_c = out.C.cpu()
    tag = f"conv k{kernel_size} s{stride}"
    if list(out.tensor_stride) != [stride] * 3:
        return [Comparison(tag, False, float("inf"), float("inf"), f"output stride {out.tensor_stride}")]

    w = dense_kernel(conv.kernel.detach().cpu(), kernel_size).clone().requires_grad_(True)
    x_ref = feats.clone().requires_grad_(True)
    lo = kernel_lo(kernel_size)
    pad = (-lo, kernel_size - 1 + lo) * 3
    y = F.conv3d(F.pad(to_dense(coords, x_ref, batch), pad), w, stride=stride)
    ref = read_dense(y, out_c, stride)
    upstream = torch.randn(ref.shape, generator=gen, dtype=torch.float64)
    g_x, g_w = _grads(out.F, upstream, [x_f, conv.kernel])
    r_x, r_w = _grads(ref, upstream, [x_ref, w])
    expected_coords = torch.unique(torch.cat([coords[:, :1], coords[:, 1:] // stride * stride], 1), dim=0)
    return [
        compare(f"{tag} output coordinates", torch.unique(out_c, dim=0), expected_coords, 0, 0),
        compare(f"{tag} forward", out.F, ref, RTOL, ATOL),
        compare(f"{tag} grad input", g_x, r_x, RTOL, ATOL),
        compare(f"{tag} grad kernel", dense_kernel(g_w.cpu(), kernel_size), r_w, RTOL, ATOL),
    ]


def transposed_case(device: torch.device, gen: torch.Generator, kernel_size: int) -> list[Comparison]:
    """A stride-2 transposed convolution back onto the fine map: values and gradients vs ``conv_transpose3d``."""
    batch, cin, cout, stride = 2, 3, 2, 2
    coords = random_voxels(gen, batch)
    feats = torch.randn(coords.shape[0], cin, generator=gen, dtype=torch.float64)
    x = sparse_tensor(feats.to(device), coords.to(device), device=str(device))
    down = ME.MinkowskiConvolution(cin, cin, kernel_size=2, stride=stride, bias=False, dimension=3).double()
    coarse = down.to(device)(x)
    coarse_coords = coarse.C.cpu()
    coarse_f = torch.randn(coarse.F.shape, generator=gen, dtype=torch.float64)
    coarse_in_f = coarse_f.to(device).requires_grad_(True)
    coarse_in = ME.SparseTensor(
        coarse_in_f,
        coordinate_map_key=coarse.coordinate_map_key,
        coordinate_manager=coarse.coordinate_manager,
    )
    up = ME.MinkowskiConvolutionTranspose(
        cin, cout, kernel_size=kernel_size, stride=stride, bias=False, dimension=3
    )
    up = up.double()
    with torch.no_grad():
        up.kernel.copy_(torch.randn(up.kernel.shape, generator=gen, dtype=torch.float64))
    up = up.to(device)
    out = up(coarse_in)
    out_c = out.C.cpu()
    tag = f"transposed k{kernel_size} s{stride}"
    if list(out.tensor_stride) != [1, 1, 1]:
        return [Comparison(tag, False, float("inf"), float("inf"), f"output stride {out.tensor_stride}")]

    # conv_transpose3d: y[s * i + t] += W[t] x[i] for t in 0..k-1, i.e. output coordinate s*i + t + lo.
    w = (
        dense_kernel(up.kernel.detach().cpu(), kernel_size)
        .permute(1, 0, 2, 3, 4)
        .clone()
        .requires_grad_(True)
    )
    x_ref = coarse_f.clone().requires_grad_(True)
    y = F.conv_transpose3d(to_dense(coarse_coords, x_ref, batch, stride), w, stride=stride)
    ref = read_dense(y, out_c, 1, shift=-kernel_lo(kernel_size))
    upstream = torch.randn(ref.shape, generator=gen, dtype=torch.float64)
    g_x, g_w = _grads(out.F, upstream, [coarse_in_f, up.kernel])
    r_x, r_w = _grads(ref, upstream, [x_ref, w])
    return [
        compare(f"{tag} output coordinates", torch.unique(out_c, dim=0), torch.unique(coords, dim=0), 0, 0),
        compare(f"{tag} forward", out.F, ref, RTOL, ATOL),
        compare(f"{tag} grad input", g_x, r_x, RTOL, ATOL),
        compare(
            f"{tag} grad kernel", dense_kernel(g_w.cpu(), kernel_size).permute(1, 0, 2, 3, 4), r_w, RTOL, ATOL
        ),
    ]


def check_sparse_conv(device: torch.device, seed: int) -> CheckResult:
    """Every forward and transposed case on ``device``."""
    gen = torch.Generator().manual_seed(seed)
    comparisons: list[Comparison] = []
    for k, s in CONV_CASES:
        comparisons += conv_case(device, gen, k, s)
    for k in TRANSPOSED_KERNELS:
        comparisons += transposed_case(device, gen, k)
    return judge("sparse_conv", str(device), comparisons, TOL_TEXT)


def check_row_order(device: torch.device, seed: int) -> CheckResult:
    """A 3x3x3 convolution of shuffled coordinates with duplicates, mapped back to input rows, against
    the dense reference read at the input coordinates in their given order."""
    gen = torch.Generator().manual_seed(seed)
    batch, cin, cout = 2, 2, 3
    unique = random_voxels(gen, batch)
    feats_u = torch.randn(unique.shape[0], cin, generator=gen, dtype=torch.float64)
    # Shuffle, then repeat a quarter of the rows: duplicates carry identical features, so the
    # reference is unambiguous whichever duplicate MinkowskiEngine keeps.
    rows = torch.randperm(unique.shape[0], generator=gen)
    rows = torch.cat([rows, rows[torch.randint(rows.shape[0], (rows.shape[0] // 4,), generator=gen)]])
    rows = rows[torch.randperm(rows.shape[0], generator=gen)]
    coords, feats = unique[rows], feats_u[rows]
    conv = ME.MinkowskiConvolution(cin, cout, kernel_size=3, stride=1, bias=False, dimension=3).double()
    with torch.no_grad():
        conv.kernel.copy_(torch.randn(conv.kernel.shape, generator=gen, dtype=torch.float64))
    x = sparse_tensor(feats.to(device), coords.to(device), device=str(device))
    got = features_in_input_order(conv.to(device)(x), x)
    y = F.conv3d(
        F.pad(to_dense(coords, feats, batch), (1, 1) * 3), dense_kernel(conv.kernel.detach().cpu(), 3)
    )
    ref = read_dense(y, coords, 1)
    result = judge(
        "row_order", str(device), [compare("input-order features", got, ref, RTOL, ATOL)], TOL_TEXT
    )
    # Whether the engine's map keeps the order of first appearance (it does on CPU; CUDA hashes).
    first = x.unique_index.long().cpu()
    kept = bool((first[1:] > first[:-1]).all())
    result.data["engine_kept_input_order"] = kept
    result.figure += "; engine order " + ("= input" if kept else "!= input (mapped)")
    return result
