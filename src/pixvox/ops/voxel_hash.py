"""Hash of the voxels of a batch of sparse scenes: ``(batch, x, y, z)`` → row of the coordinates.

Keys pack ``x, y, z + 2^20`` into 21 bits each, so every coordinate must satisfy
``|c| < 2^20`` (:data:`pixvox.geometry.MAX_VOXEL_COORD`; 26 km at 2.5 cm voxels); the batch index
is compared separately and may be any int32 ``>= 0``.
"""

from __future__ import annotations

import torch

from pixvox.geometry import MAX_VOXEL_COORD
from pixvox.ops._extension import kernel

_INT32_MAX = 2**31 - 1


def check_voxel_coords(coords: torch.Tensor, what: str = "coords") -> torch.Tensor:
    """Validate ``[N, 4]`` integer ``(batch, x, y, z)`` voxel coordinates; return them as contiguous int32."""
    if not isinstance(coords, torch.Tensor):
        raise TypeError(f"{what} must be a torch.Tensor, got {type(coords).__name__}")
    if coords.ndim != 2 or coords.shape[1] != 4:
        raise ValueError(f"{what} must be [N, 4] (batch, x, y, z), got shape {tuple(coords.shape)}")
    if coords.is_floating_point() or coords.is_complex() or coords.dtype == torch.bool:
        raise TypeError(
            f"{what} must be integer voxel coordinates, got {coords.dtype}; "
            "voxelize points with pixvox.geometry.voxel_coords first"
        )
    if coords.shape[0] >= _INT32_MAX:
        raise ValueError(f"{what} holds {coords.shape[0]} voxels; a VoxelHash holds fewer than 2^31")
    if coords.shape[0]:
        wide = coords.long()
        batch_min, batch_max = (int(b) for b in torch.aminmax(wide[:, 0]))
        if batch_min < 0 or batch_max > _INT32_MAX:
            bad = batch_min if batch_min < 0 else batch_max
            raise ValueError(f"{what}: batch indices must lie in [0, 2^31), found {bad}")
        extent = int(wide[:, 1:].abs().max())
        if extent >= MAX_VOXEL_COORD:
            row = int((wide[:, 1:].abs() >= MAX_VOXEL_COORD).any(dim=1).nonzero()[0])
            raise ValueError(
                f"{what}[{row}] = {tuple(wide[row].tolist())} is outside the voxel key range: "
                f"|x|, |y|, |z| must stay below {MAX_VOXEL_COORD} (2^20). "
                "Check the voxel size and the units of the points (metres)."
            )
    return coords.to(torch.int32).contiguous()


class VoxelHash:
    """Lookup table from voxel coordinates to their row in ``coords``, on the device of ``coords``.

    Build it once per batch of scenes (for example from a sparse tensor's ``C``) and reuse it for
    every lookup and :func:`pixvox.ops.pixel_to_voxel` call of that batch.

    Args:
        coords: ``[N, 4]`` integer ``(batch, x, y, z)`` voxel coordinates, unique rows, batch >= 0,
            ``|x|, |y|, |z| < 2^20``.

    Raises:
        ValueError: duplicate rows (naming both), coordinates out of the key range, bad shape.
        TypeError: floating point coordinates.
    """

    def __init__(self, coords: torch.Tensor) -> None:
        coords = check_voxel_coords(coords)
        table, entries, duplicate = kernel("build_voxel_hash", coords.device)(coords)
        first, second = (int(i) for i in duplicate.tolist())
        if first >= 0:
            raise ValueError(
                f"duplicate voxel coordinate {tuple(coords[first].tolist())} at rows {first} and {second}; "
                "a VoxelHash needs unique (batch, x, y, z) rows "
                "(deduplicate with torch.unique(coords, dim=0))"
            )
        self.coords = coords
        self._table = table
        self._entries = entries

    @property
    def num_voxels(self) -> int:
        return int(self.coords.shape[0])

    @property
    def device(self) -> torch.device:
        return self.coords.device

    def __len__(self) -> int:
        return self.num_voxels

    def __repr__(self) -> str:
        return f"VoxelHash(num_voxels={self.num_voxels}, device={self.device})"

    def to(self, device: torch.device | str) -> VoxelHash:
        """The same hash on another device (rebuilt there)."""
        device = torch.device(device)
        return self if device == self.device else VoxelHash(self.coords.to(device))

    def lookup(self, coords: torch.Tensor) -> torch.Tensor:
        """Row of each query voxel in the hash's ``coords``, or -1 where absent.

        Args:
            coords: ``[M, 4]`` integer ``(batch, x, y, z)`` on the hash's device; coordinates outside
                the key range are simply absent.

        Returns:
            ``[M]`` int64 row indices.
        """
        if not isinstance(coords, torch.Tensor) or coords.ndim != 2 or coords.shape[1] != 4:
            shape = tuple(coords.shape) if isinstance(coords, torch.Tensor) else type(coords).__name__
            raise ValueError(f"query coords must be a [M, 4] (batch, x, y, z) tensor, got {shape}")
        if coords.is_floating_point() or coords.dtype == torch.bool:
            raise TypeError(f"query coords must be integer voxel coordinates, got {coords.dtype}")
        if coords.device != self.device:
            raise ValueError(
                f"query coords are on {coords.device}, the hash on {self.device}; move one of them"
            )
        if coords.dtype != torch.int32:
            # Narrowing to int32 must not wrap a far-away voxel onto a stored one: clamp to values that
            # are outside the key range (or an impossible batch) but still fit in int32.
            wide = coords.long()
            batch = torch.where((wide[:, 0] < 0) | (wide[:, 0] > _INT32_MAX), -1, wide[:, 0])
            xyz = wide[:, 1:].clamp(-MAX_VOXEL_COORD, MAX_VOXEL_COORD)
            coords = torch.cat([batch[:, None], xyz], dim=1).to(torch.int32)
        return kernel("voxel_hash_lookup", self.device)(self._table, self._entries, coords.contiguous())
