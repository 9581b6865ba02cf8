"""The installed engine behaves as the patch set says: imports, gradcheck, empty tensors.

Each test would fail on the unpatched 0.5.4 build (ImportError on Python >= 3.10, ModuleNotFoundError
for torch._six, a segmentation fault); the crash-prone checks run in a subprocess so that a crash is
reported as a failure of one test.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest
import torch

from pixvox.sparse import ME


def run_python(code: str, timeout: int = 300) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, timeout=timeout
    )


def test_engine_imports_without_pixvox():
    """Patch 0001: a bare `import MinkowskiEngine`, with no alias set by pixvox, on this Python."""
    proc = run_python("import MinkowskiEngine as ME; print(ME.__version__)")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.strip().splitlines()[-1] == "0.5.4"


class _Square(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x * x

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        return 2 * x * g


class _WrongSquare(_Square):
    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        return 3 * x * g


def test_engine_gradcheck_accepts_and_rejects(seed):
    """Patch 0002: MinkowskiEngine.utils.gradcheck works on torch 2 and still detects a wrong gradient."""
    from MinkowskiEngine.utils.gradcheck import gradcheck

    x = torch.randn(5, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(seed)).requires_grad_()
    assert gradcheck(_Square, (x,))
    assert gradcheck(_WrongSquare, (x,), raise_exception=False) is False
    with pytest.raises(RuntimeError, match="Jacobian mismatch"):
        gradcheck(_WrongSquare, (x,))


def test_engine_gradcheck_on_a_sparse_convolution(seed):
    """The engine's own use: a Function with non-tensor arguments (kernel generator, map keys, manager)."""
    from MinkowskiEngine.utils.gradcheck import gradcheck

    gen = torch.Generator().manual_seed(seed)
    coords = torch.unique(torch.randint(0, 6, (40, 3), generator=gen), dim=0)
    coords = torch.cat([torch.zeros(len(coords), 1, dtype=coords.dtype), coords], 1).int()
    feats = torch.randn(len(coords), 2, dtype=torch.float64, generator=gen).requires_grad_()
    x = ME.SparseTensor(feats, coordinates=coords)
    conv = ME.MinkowskiConvolution(2, 3, kernel_size=3, dimension=3).double()
    out = conv(x)
    fn = ME.MinkowskiConvolutionFunction()
    args = (x.F, conv.kernel, conv.kernel_generator, conv.convolution_mode, x.coordinate_map_key,
            out.coordinate_map_key, x.coordinate_manager)  # fmt: skip
    assert gradcheck(fn, args)


def test_empty_sparse_tensor_through_the_layers():
    """Patch 0003: layers on a SparseTensor with no points give empty outputs instead of a segfault."""
    proc = run_python(
        """
        import torch, MinkowskiEngine as ME
        x = ME.SparseTensor(torch.zeros(0, 3, requires_grad=True), coordinates=torch.zeros(0, 4, dtype=torch.int32))
        layers = [
            ME.MinkowskiConvolution(3, 5, kernel_size=3, dimension=3),
            ME.MinkowskiConvolution(3, 5, kernel_size=2, stride=2, dimension=3),
            ME.MinkowskiMaxPooling(kernel_size=2, stride=2, dimension=3),
            ME.MinkowskiAvgPooling(kernel_size=3, stride=1, dimension=3),
        ]
        for layer in layers:
            y = layer(x)
            print(type(layer).__name__, tuple(y.F.shape))
        down = ME.MinkowskiConvolution(3, 4, kernel_size=2, stride=2, dimension=3)(x)
        up = ME.MinkowskiConvolutionTranspose(4, 6, kernel_size=2, stride=2, dimension=3)(down)
        print("transpose", tuple(up.F.shape))
        conv = ME.MinkowskiConvolution(3, 5, kernel_size=3, dimension=3)
        conv(x).F.sum().backward()
        print("grad", tuple(x.F.grad.shape), float(conv.kernel.grad.abs().sum()))
        """
    )
    assert proc.returncode == 0, f"exit {proc.returncode} (-11 is a segfault)\n{proc.stderr[-3000:]}"
    lines = proc.stdout.strip().splitlines()
    assert lines == [
        "MinkowskiConvolution (0, 5)",
        "MinkowskiConvolution (0, 5)",
        "MinkowskiMaxPooling (0, 3)",
        "MinkowskiAvgPooling (0, 3)",
        "transpose (0, 6)",
        "grad (0, 3) 0.0",
    ], proc.stdout


def _brute_force_pairs(coords: torch.Tensor, out_coords: torch.Tensor, kernel_size: int, dim: int) -> set:
    """(input row, output row) pairs with input = output + offset, offsets of a kernel at tensor stride 1."""
    lo = -(kernel_size // 2) if kernel_size % 2 else 0
    offsets = torch.cartesian_prod(*[torch.arange(lo, lo + kernel_size)] * dim).reshape(-1, dim)
    index = {tuple(c): i for i, c in enumerate(coords.tolist())}
    pairs = set()
    for o, c in enumerate(out_coords.tolist()):
        for off in offsets.tolist():
            key = (c[0], *[a + b for a, b in zip(c[1:], off)])
            if key in index:
                pairs.add((index[key], o))
    return pairs


@pytest.mark.parametrize("kernel_size,stride", [(3, 2), (2, 2), (3, 1)])
def test_kernel_map_matches_brute_force(seed, kernel_size, stride):
    """The kernel map the engine builds equals a brute-force search (upstream kernel_map.py expects 16)."""
    gen = torch.Generator().manual_seed(seed)
    dim = 2
    pts = torch.unique(torch.randint(0, 7, (30, dim), generator=gen), dim=0)
    coords = torch.cat([torch.cat([torch.full((len(pts), 1), b), pts], 1) for b in range(2)]).int()
    x = ME.SparseTensor(torch.ones(len(coords), 1, dtype=torch.float64), coordinates=coords)
    conv = ME.MinkowskiConvolution(1, 1, kernel_size=kernel_size, stride=stride, dimension=dim).double()
    out = conv(x)
    km = out.coordinate_manager.kernel_map(1, stride, stride=stride, kernel_size=kernel_size)
    got = {(i, o) for m in km.values() for i, o in zip(m[0].tolist(), m[1].tolist())}
    assert got == _brute_force_pairs(x.C, out.C, kernel_size, dim)


def test_kernel_map_of_the_upstream_example_has_26_pairs():
    """kernel_map.py's data: 2 x 8 points, kernel 3, stride 2 → 26 pairs (its assertion says 16)."""
    rows = ["   X   ", "  X X  ", " XXXXX "]
    pts = [[i, j] for i, row in enumerate(rows) for j, ch in enumerate(row) if ch != " "]
    coords = ME.utils.batched_coordinates([torch.tensor(pts)] * 2)
    x = ME.SparseTensor(torch.ones(len(coords), 2, dtype=torch.float64), coordinates=coords)
    out = ME.MinkowskiConvolution(2, 3, kernel_size=3, stride=2, dimension=2).double()(x)
    km = out.coordinate_manager.kernel_map(1, 2, stride=2, kernel_size=3)
    assert sum(len(m[0]) for m in km.values()) == len(_brute_force_pairs(x.C, out.C, 3, 2)) == 26


def _interpolation_input(seed):
    gen = torch.Generator().manual_seed(seed)
    pts = torch.unique(torch.randint(0, 6, (25, 2), generator=gen), dim=0)
    coords = ME.utils.batched_coordinates([pts, pts])
    feats = torch.randn(len(coords), 2, dtype=torch.float64, generator=gen).requires_grad_()
    x = ME.SparseTensor(feats, coordinates=coords)
    tfield = torch.cat(
        [torch.randint(0, 2, (9, 1), generator=gen), torch.rand(9, 2, generator=gen) * 5], 1
    ).double()
    return x, tfield


def test_interpolation_maps_are_not_differentiable(seed):
    """Patch 0008: the maps and weights come back without a gradient path; the features keep theirs."""
    from MinkowskiEngine.utils.gradcheck import gradcheck

    x, tfield = _interpolation_input(seed)
    out, (in_map, out_map), weights = ME.MinkowskiInterpolation(return_kernel_map=True, return_weights=True)(
        x, tfield
    )
    assert out.requires_grad and not weights.requires_grad and not in_map.requires_grad
    args = (x.F, tfield, x.coordinate_map_key, x.coordinate_manager)
    torch.set_num_threads(2)
    # The maps' row order varies from call to call with 2 threads; the check holds every time.
    for _ in range(5):
        assert gradcheck(ME.MinkowskiInterpolationFunction, args)


def test_dense_of_an_empty_sparse_tensor():
    """Patch 0009: an all-zero dense tensor survives to_sparse → dense (upstream dense.py test_empty)."""
    x = torch.zeros(4, 1, 34, 34)
    s = ME.to_sparse(x)
    assert len(s.C) == 0
    assert torch.equal(ME.MinkowskiToDenseTensor(x.shape)(s), x)
    dense, min_coordinate, _ = s.dense(shape=x.shape)
    assert torch.equal(dense, x) and min_coordinate.tolist() == [[0, 0]]
    with pytest.raises(ValueError, match="needs the shape"):
        s.dense()


def test_to_sparse_tensor_with_given_coordinates(seed):
    """Patch 0010: MinkowskiToSparseTensor(remove_zeros=False, coordinates=...) as documented."""
    gen = torch.Generator().manual_seed(seed)
    x = torch.rand(2, 3, 5, 4, generator=gen)
    x[x < 0.5] = 0  # zeros are kept: every coordinate is given
    coordinates = ME.dense_coordinates(x.shape)
    s = ME.MinkowskiToSparseTensor(remove_zeros=False, coordinates=coordinates)(x)
    assert len(s.C) == 2 * 5 * 4
    assert torch.equal(ME.MinkowskiToDenseTensor(x.shape)(s), x)
    with pytest.raises(AssertionError, match="remove_zeros=True"):
        ME.MinkowskiToSparseTensor(remove_zeros=True, coordinates=coordinates)
