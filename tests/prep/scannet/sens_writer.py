"""An independent ScanNet .sens writer for tests, following the published layout field by field."""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np


def write_sens(
    path: Path,
    colors: list[bytes],
    depths: list[bytes],
    poses: list,
    *,
    K_color,
    K_depth,
    color_size: tuple[int, int],
    depth_size: tuple[int, int],
    ext_color=None,
    ext_depth=None,
    color_compression: int = 2,
    depth_compression: int = 1,
    depth_shift: float = 1000.0,
    sensor: bytes = b"StructureSensor",
) -> None:
    """Write a ScanNet .sens file field by field from the published layout (independent of pixvox.prep)."""

    def mat(m) -> bytes:
        return np.asarray(m, dtype="<f4").reshape(16).tobytes()

    def k4(K) -> np.ndarray:
        m = np.eye(4)
        m[:3, :3] = K
        return m

    with open(path, "wb") as f:
        f.write(struct.pack("<I", 4))
        f.write(struct.pack("<Q", len(sensor)) + sensor)
        f.write(mat(k4(K_color)) + mat(np.eye(4) if ext_color is None else ext_color))
        f.write(mat(k4(K_depth)) + mat(np.eye(4) if ext_depth is None else ext_depth))
        f.write(struct.pack("<ii", color_compression, depth_compression))
        f.write(struct.pack("<IIII", color_size[0], color_size[1], depth_size[0], depth_size[1]))
        f.write(struct.pack("<f", depth_shift))
        f.write(struct.pack("<Q", len(colors)))
        for i, (c, d, T) in enumerate(zip(colors, depths, poses)):
            f.write(mat(T))
            f.write(struct.pack("<QQ", 1000 * i, 1000 * i + 7))
            f.write(struct.pack("<QQ", len(c), len(d)))
            f.write(c)
            f.write(d)
