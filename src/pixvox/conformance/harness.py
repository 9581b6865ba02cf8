"""Shims for the upstream test harness (never for the engine): the room scan, open3d, import paths.

``tests/python/common.py`` of the suite downloads a room scan to ``./1.ply`` at import unless the file
exists, and reads it with open3d. Here the file is written beforehand from a real ScanNet room in
the Pointcept layout (``coord.npy`` float32 metres, ``color.npy`` uint8 RGB), and, where open3d is
not installed, a stand-in module reads it back the way ``open3d.io.read_point_cloud`` would
(float64 points, float64 colors in [0, 1]).
"""

from __future__ import annotations

import importlib.util
import sys
import types
from pathlib import Path

import numpy as np

from pixvox.io.atomic import atomic_open

SCAN_NAME = "1.ply"  # the file name the suite downloads and opens


def write_room_ply(room: Path, out: Path) -> int:
    """Write a Pointcept-layout room (``coord.npy``, ``color.npy``) as a binary PLY; returns its point count."""
    from plyfile import PlyData, PlyElement

    coord_file, color_file = room / "coord.npy", room / "color.npy"
    for f in (coord_file, color_file):
        if not f.is_file():
            raise FileNotFoundError(
                f"{f} not found: --room must be a Pointcept-layout scene folder with coord.npy and "
                "color.npy (e.g. ../shared/data/scannet_pointcept/scene0011_00)"
            )
    coord = np.load(coord_file)
    color = np.load(color_file)
    if coord.ndim != 2 or coord.shape[1] != 3 or color.shape != coord.shape:
        raise ValueError(f"{room}: coord.npy {coord.shape} and color.npy {color.shape} must both be (N, 3)")
    vertex = np.empty(
        len(coord),
        dtype=[("x", "f4"), ("y", "f4"), ("z", "f4"), ("red", "u1"), ("green", "u1"), ("blue", "u1")],
    )
    for i, name in enumerate("xyz"):
        vertex[name] = coord[:, i]
    for i, name in enumerate(("red", "green", "blue")):
        vertex[name] = color[:, i]
    with atomic_open(out, "wb") as f:
        PlyData([PlyElement.describe(vertex, "vertex")], text=False).write(f)
    return len(coord)


class _PointCloud:
    """What the suite reads of an ``open3d.geometry.PointCloud``: ``points`` and ``colors``."""

    def __init__(self, points: np.ndarray, colors: np.ndarray):
        self.points = points
        self.colors = colors


def _read_point_cloud(file_name: str) -> _PointCloud:
    from plyfile import PlyData

    v = PlyData.read(str(file_name))["vertex"].data
    points = np.stack([v["x"], v["y"], v["z"]], axis=1).astype(np.float64)
    colors = np.stack([v["red"], v["green"], v["blue"]], axis=1).astype(np.float64) / 255.0
    return _PointCloud(points, colors)


def open3d_standin() -> types.ModuleType:
    """A module with ``io.read_point_cloud``, the one open3d function the suite calls."""
    module = types.ModuleType("open3d")
    module.__doc__ = "pixvox stand-in for open3d: only io.read_point_cloud (PLY), for the engine's test suite"
    io = types.ModuleType("open3d.io")
    io.read_point_cloud = _read_point_cloud  # type: ignore[attr-defined]
    module.io = io  # type: ignore[attr-defined]
    return module


def install_import_shims(suite: Path) -> list[str]:
    """Make the suite's imports resolve; returns a line per shim installed.

    ``tests`` must be the suite's package (not pixvox's own ``tests``), and ``tests.common`` (an
    older location of ``tests/python/common.py``) an alias of ``tests.python.common``.
    """
    notes = []
    tests_dir = suite / "tests"
    if not (tests_dir / "python" / "common.py").is_file():
        raise FileNotFoundError(
            f"{tests_dir}/python/common.py not found: is {suite} the engine's test suite?"
        )
    pkg = types.ModuleType("tests")
    pkg.__path__ = [str(tests_dir)]  # type: ignore[attr-defined]
    sys.modules["tests"] = pkg
    spec = importlib.util.spec_from_file_location(
        "tests.python",
        tests_dir / "python" / "__init__.py",
        submodule_search_locations=[str(tests_dir / "python")],
    )
    assert spec is not None and spec.loader is not None
    python_pkg = importlib.util.module_from_spec(spec)
    sys.modules["tests.python"] = python_pkg
    spec.loader.exec_module(python_pkg)
    pkg.python = python_pkg  # type: ignore[attr-defined]

    try:
        import open3d  # noqa: F401
    except ImportError:
        sys.modules["open3d"] = open3d_standin()
        notes.append("open3d: not installed; a PLY reader stands in for open3d.io.read_point_cloud")

    import tests.python.common as common  # noqa: E402 - needs the modules above and ./1.ply

    sys.modules["tests.common"] = common
    pkg.common = common  # type: ignore[attr-defined]
    notes.append("tests.common: alias of tests.python.common (the upstream file moved)")
    return notes
