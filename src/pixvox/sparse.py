"""The one place that imports MinkowskiEngine (0.5.4).

Importing this module
- applies the Python >= 3.10 compatibility fix (0.5.4 still uses ``collections.Sequence``),
- sets a safe OpenBLAS thread default (one thread per process: 0.5.4's CPU kernels call BLAS from
  several OpenMP threads, and nested BLAS threads only oversubscribe the cores),
- exposes ``ME`` and :func:`sparse_tensor`, which refuses empty inputs: a convolution on an empty
  sparse tensor segfaults in 0.5.4, so we raise a Python error before one can reach it.

Everything else in pixvox writes ``from pixvox.sparse import ME``.
"""

from __future__ import annotations

import collections
import collections.abc
import os

# Must happen before OpenBLAS is loaded (first import of MinkowskiEngine or numpy's BLAS use).
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

if not hasattr(collections, "Sequence"):  # removed from `collections` in Python 3.10
    collections.Sequence = collections.abc.Sequence  # type: ignore[attr-defined]

import warnings  # noqa: E402

import torch  # noqa: E402

try:
    with warnings.catch_warnings():
        # A CPU-only build warns on every import; that build is intended where no GPU exists.
        warnings.filterwarnings("ignore", message=".*compiled with CPU_ONLY.*")
        import MinkowskiEngine as ME  # noqa: E402,N817
except ImportError as err:  # pragma: no cover - depends on the environment
    raise ImportError(
        "MinkowskiEngine 0.5.4 is not importable in this environment "
        f"({err}). Run `bash tools/setup_env.sh` from the repository root and activate .venv/."
    ) from err
# 0.5.4 instantiates its autograd Functions on every call, which newer torch warns about each time.
warnings.filterwarnings("ignore", message=".*should not be instantiated.*", category=DeprecationWarning)

__all__ = ["ME", "EmptySparseTensorError", "sparse_tensor", "check_not_empty", "batched_coordinates"]


class EmptySparseTensorError(ValueError):
    """A sparse tensor with no points was about to reach MinkowskiEngine (which would crash)."""


def check_not_empty(x: ME.SparseTensor | torch.Tensor, what: str = "sparse tensor") -> None:
    """Raise :class:`EmptySparseTensorError` if ``x`` (a SparseTensor or its coordinates) has no rows."""
    n = x.C.shape[0] if isinstance(x, ME.SparseTensor) else x.shape[0]
    if n == 0:
        raise EmptySparseTensorError(
            f"{what} has no points; MinkowskiEngine 0.5.4 segfaults when convolving an empty sparse "
            "tensor. Skip this sample (no valid voxels) or check the input depth / voxel size."
        )


def sparse_tensor(
    features: torch.Tensor,
    coordinates: torch.Tensor,
    *,
    tensor_stride: int = 1,
    **kwargs,
) -> ME.SparseTensor:
    """Build a ``ME.SparseTensor`` after validating its inputs.

    Args:
        features: ``[N, C]`` floating point features, one row per voxel.
        coordinates: ``[N, 4]`` int32 ``(batch, x, y, z)`` integer voxel coordinates
            (``ME.utils.batched_coordinates`` makes them from per-sample ``[Ni, 3]`` arrays).
        tensor_stride: stride of the coordinates, 1 for input voxels.
        kwargs: passed to ``ME.SparseTensor`` (``coordinate_manager``, ``device``, ...).
    """
    check_not_empty(coordinates, "input sparse tensor")
    if coordinates.ndim != 2 or coordinates.shape[1] != 4:
        raise ValueError(f"coordinates must be [N, 4] (batch, x, y, z), got {tuple(coordinates.shape)}")
    if features.ndim != 2 or features.shape[0] != coordinates.shape[0]:
        raise ValueError(
            f"features must be [N, C] with N = {coordinates.shape[0]} rows, got {tuple(features.shape)}"
        )
    if not features.is_floating_point():
        raise TypeError(f"features must be floating point, got {features.dtype}")
    if coordinates.dtype != torch.int32:
        if coordinates.is_floating_point():
            raise TypeError("coordinates must be integer voxel indices (int32), got floating point")
        coordinates = coordinates.int()
    return ME.SparseTensor(features, coordinates=coordinates, tensor_stride=tensor_stride, **kwargs)


def batched_coordinates(coords: list[torch.Tensor], device: torch.device | str | None = None) -> torch.Tensor:
    """Stack per-sample ``[Ni, 3]`` int voxel coordinates into ``[sum Ni, 4]`` int32 with batch index first."""
    if not coords:
        raise EmptySparseTensorError("no samples to batch")
    out = ME.utils.batched_coordinates([c.int().cpu() for c in coords], dtype=torch.int32)
    return out.to(device) if device is not None else out
