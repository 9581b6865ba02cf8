"""The one place that imports MinkowskiEngine (0.5.4, built with pixvox's patch set).

``tools/setup_env.sh`` builds the engine from its source release with ``patches/minkowskiengine/``
applied (Python >= 3.10 and torch 2 compatibility, no crash on empty tensors, CPU threading; see
docs/minkowskiengine.md). Importing this module
- sets a safe OpenBLAS thread default (one thread per process: the engine's CPU kernels call BLAS
  from inside their own OpenMP threads, and nested BLAS threads only oversubscribe the cores),
- exposes ``ME``, :data:`ENGINE_PATCHES` (the patches the installed engine carries; empty for an
  engine not built by the setup script) and :func:`sparse_tensor`, which validates its inputs and
  refuses empty ones with a message that names the likely cause,
- maps a network's output rows back to the rows of its input (:func:`features_in_input_order`):
  MinkowskiEngine stores rows in the order of its coordinate map, which need not be the order the
  coordinates were given in (the CUDA map orders them by its hash table).

Everything else in pixvox writes ``from pixvox.sparse import ME``.
"""

from __future__ import annotations

import os

# Must happen before OpenBLAS is loaded (first import of MinkowskiEngine or numpy's BLAS use).
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import warnings  # noqa: E402

import torch  # noqa: E402

try:
    with warnings.catch_warnings():
        # A CPU-only build warns on every import; that build is intended where no GPU exists.
        warnings.filterwarnings("ignore", message=".*compiled with CPU_ONLY.*")
        import MinkowskiEngine as ME  # noqa: E402,N817
except ImportError as err:  # pragma: no cover - depends on the environment
    raise ImportError(
        f"MinkowskiEngine 0.5.4 is not importable in this environment ({err}). pixvox needs the engine "
        "built with its patch set (patches/minkowskiengine/): run `bash tools/setup_env.sh` from the "
        "repository root and activate .venv/."
    ) from err
# 0.5.4 instantiates its autograd Functions on every call, which newer torch warns about each time.
warnings.filterwarnings("ignore", message=".*should not be instantiated.*", category=DeprecationWarning)

try:
    from MinkowskiEngine import _pixvox_patches  # written by tools/setup_env.sh into the build

    ENGINE_PATCHES: tuple[str, ...] = tuple(_pixvox_patches.PATCHES)
    ENGINE_PATCH_SET: str | None = _pixvox_patches.PATCH_SET
except ImportError:  # an engine built elsewhere
    ENGINE_PATCHES, ENGINE_PATCH_SET = (), None

__all__ = [
    "ME",
    "ENGINE_PATCHES",
    "ENGINE_PATCH_SET",
    "EmptySparseTensorError",
    "RowMappingError",
    "sparse_tensor",
    "check_not_empty",
    "batched_coordinates",
    "features_in_input_order",
]


class EmptySparseTensorError(ValueError):
    """A sample or batch has no voxels: nothing to learn from, and almost always a data problem."""


class RowMappingError(ValueError):
    """A network output cannot be mapped back to the rows of its input (coordinates missing)."""


def check_not_empty(x: ME.SparseTensor | torch.Tensor, what: str = "sparse tensor") -> None:
    """Raise :class:`EmptySparseTensorError` if ``x`` (a SparseTensor or its coordinates) has no rows."""
    n = x.C.shape[0] if isinstance(x, ME.SparseTensor) else x.shape[0]
    if n == 0:
        raise EmptySparseTensorError(
            f"{what} has no points: no valid voxels in this sample. Skip the sample, or check the "
            "input depth (units, invalid values) and the voxel size."
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


def features_in_input_order(out: ME.SparseTensor, x: ME.SparseTensor) -> torch.Tensor:
    """``out``'s features ``[N, C]`` with row ``i`` belonging to row ``i`` of the coordinates that built ``x``.

    ``x`` is the network's input as made by :func:`sparse_tensor` (or ``ME.SparseTensor``) from
    ``[N, 4]`` coordinates; ``out`` is an output at the same tensor stride. MinkowskiEngine keeps
    the rows of a sparse tensor in the order of its coordinate map and records, for every input
    row, its row in that map (``x.inverse_mapping``); input rows with the same coordinates share a
    row. When ``out`` lives on ``x``'s coordinate map (every stride-1 output of a U-Net does), that
    record is the mapping. Otherwise ``out``'s coordinates are looked up explicitly, and every input
    coordinate must be among them.

    Raises:
        RowMappingError: ``out`` has another tensor stride, or lacks some of the input coordinates.
    """
    if list(out.tensor_stride) != list(x.tensor_stride):
        raise RowMappingError(
            f"output at tensor stride {list(out.tensor_stride)} cannot be mapped to input rows at "
            f"stride {list(x.tensor_stride)}; end the network with a layer back to the input stride"
        )
    rows = x.inverse_mapping.long()
    if out.coordinate_manager is x.coordinate_manager and out.coordinate_map_key == x.coordinate_map_key:
        return out.F[rows]
    # Another coordinate map (a network that builds a new sparse tensor, another manager): match the
    # coordinates themselves. Import here: pixvox.ops loads the compiled kernels.
    from pixvox.ops.voxel_hash import VoxelHash

    input_coords = x.C[rows]
    found = VoxelHash(out.C).lookup(input_coords.to(out.C.device))
    missing = int((found < 0).sum())
    if missing:
        first = int((found < 0).nonzero()[0])
        raise RowMappingError(
            f"{missing} of {found.shape[0]} input coordinates are absent from the output (first: input row "
            f"{first} at {tuple(input_coords[first].tolist())}); the network dropped or moved voxels, "
            "so its output has no feature for them"
        )
    return out.F[found.to(out.F.device)]
