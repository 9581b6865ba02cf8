"""Procedural indoor scenes rendered as RGB-D sequences: pixvox's embedded default dataset.

Each scene is a room (floor, four walls, ceiling) furnished with tables, chairs, beds, sofas,
cabinets, bookshelves, lamps, doors, windows and pictures, all built from yaw-rotated boxes with
procedural textures (planks, tiles, stripes, fabric noise, book spines) in class-dependent colors
and view-independent Lambertian shading (a directional light plus a ceiling point light), so the
same surface looks the same from every frame. A camera loops around the room looking across it;
frames are rendered by vectorized ray-box intersection with exact z-depth and known poses.

Outputs (docs/data.md):
  ``<out>/frames/<scene>/``  exported RGB-D frames (the format of every data_prep reader),
  ``<out>/clouds/``          labeled point clouds sampled on all surfaces (``class_names`` in index.json),
  ``<out>/dataset.json``     generator options, written last: its presence means the dataset is complete.

Deterministic from the seed (scene ``i`` uses ``numpy.random.default_rng([seed, i])``).

CLI::

    python data_prep/synthetic.py --out data/synthetic --scenes 4 --frames 40 --seed 0 --image-size 240x320

Python::

    from data_prep.synthetic import generate
    summary = generate("data/synthetic", num_scenes=4, frames_per_scene=40, seed=0, image_size=(240, 320))
"""

from __future__ import annotations

import argparse
import functools
import json
import logging
import math
import shutil
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

try:
    import pixvox  # noqa: F401
except ImportError:  # run from a source checkout without installing: use ./src
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from pixvox.io.atomic import atomic_write_json  # noqa: E402
from pixvox.io.clouds import CloudIndex, CloudRecord, LabeledCloud, write_cloud  # noqa: E402
from pixvox.io.frames import FrameWriter, is_complete_scene  # noqa: E402
from pixvox.io.jobs import run_jobs, setup_logging  # noqa: E402

log = logging.getLogger("pixvox.data_prep.synthetic")

#: Semantic classes of the synthetic scenes (class id = position).
CLASS_NAMES = [
    "wall",
    "floor",
    "ceiling",
    "table",
    "chair",
    "bed",
    "sofa",
    "cabinet",
    "bookshelf",
    "door",
    "window",
    "picture",
    "lamp",
]
C = {name: i for i, name in enumerate(CLASS_NAMES)}

# Texture patterns (functions of surface-local coordinates in metres).
PLAIN, TILES, STRIPES, PLANKS, FABRIC, BOOKS = range(6)

DATASET_JSON = "dataset.json"
FORMAT = "pixvox.synthetic"
VERSION = 1
#: Nearest surface distance the renderer reports (metres); nothing in a scene is closer to the camera.
NEAR = 1e-3


# ------------------------------------------------------------------------------------------------ scene


@dataclass
class Material:
    """Procedural texture: ``pattern`` id, feature ``scale`` (metres), two RGB colors in [0, 1]."""

    pattern: int
    scale: float
    color_a: tuple[float, float, float]
    color_b: tuple[float, float, float]


@dataclass
class Scene:
    """A room ``[0, size_x] x [0, size_y] x [0, size_z]`` (metres, z up) plus furniture boxes.

    Surfaces ``0..5`` are the room's faces (x-, x+, y-, y+ walls, floor z-, ceiling z+), surfaces
    ``6..`` the boxes. Per surface: ``center`` / ``half`` extents / ``yaw`` (rotation about z) of the
    box in the world, class ``label``, and its material (``pattern``, ``scale``, ``color_a/b``, ``seed``).
    """

    size: np.ndarray
    center: np.ndarray
    half: np.ndarray
    yaw: np.ndarray
    label: np.ndarray
    pattern: np.ndarray
    scale: np.ndarray
    color_a: np.ndarray
    color_b: np.ndarray
    seed: np.ndarray
    light_pos: np.ndarray
    num_objects: int = 0

    @property
    def num_boxes(self) -> int:
        return int(self.center.shape[0]) - 6

    @functools.cached_property
    def tables32(self) -> dict[str, np.ndarray]:
        """float32 per-surface centre, half extents, cos/sin of yaw, for per-pixel gathers."""
        return {
            "center": self.center.astype(np.float32),
            "half": self.half.astype(np.float32),
            "cos": np.cos(self.yaw).astype(np.float32),
            "sin": np.sin(self.yaw).astype(np.float32),
        }


@dataclass
class _Builder:
    """Accumulates boxes while a scene is furnished (object-local parts → world boxes)."""

    rng: np.random.Generator
    size: np.ndarray
    boxes: list[tuple[np.ndarray, np.ndarray, float, int, Material]] = field(default_factory=list)
    aabbs: list[np.ndarray] = field(default_factory=list)  # [2, 3] min/max of placed objects (+ clearances)
    num_objects: int = 0

    def jitter(self, rgb: tuple[float, float, float], amount: float = 0.08) -> tuple[float, float, float]:
        c = np.clip(np.asarray(rgb) + self.rng.uniform(-amount, amount, 3), 0.03, 0.97)
        return (float(c[0]), float(c[1]), float(c[2]))

    def add_object(
        self,
        parts: list[tuple[tuple[float, float, float], tuple[float, float, float], int, Material]],
        pos: tuple[float, float],
        yaw: float,
        clearance: np.ndarray | None = None,
        ignore: int | None = None,
    ) -> bool:
        """Place ``parts`` (object-local centre, half extents, label, material; the object stands on z = 0
        around the local origin) at floor position ``pos`` rotated by ``yaw``, unless its bounding box
        collides with earlier objects (except object number ``ignore``, e.g. the table a chair is
        tucked under) or leaves the room. Returns whether it was placed."""
        c, s = math.cos(yaw), math.sin(yaw)
        world = []
        lo = np.full(3, np.inf)
        hi = np.full(3, -np.inf)
        for (cx, cy, cz), half, label, mat in parts:
            center = np.array([pos[0] + c * cx - s * cy, pos[1] + s * cx + c * cy, cz])
            h = np.asarray(half, dtype=np.float64)
            ext = np.array([abs(c) * h[0] + abs(s) * h[1], abs(s) * h[0] + abs(c) * h[1], h[2]])
            lo = np.minimum(lo, center - ext)
            hi = np.maximum(hi, center + ext)
            world.append((center, h, yaw, label, mat))
        box = np.stack([lo, hi])
        if clearance is not None:
            box = np.stack([np.minimum(lo, clearance[0]), np.maximum(hi, clearance[1])])
        if (lo[:2] < -1e-9).any() or (hi[:2] > self.size[:2] + 1e-9).any() or hi[2] > self.size[2] - 0.05:
            return False
        for k, other in enumerate(self.aabbs):
            if k != ignore and (box[0] < other[1] - 1e-9).all() and (box[1] > other[0] + 1e-9).all():
                return False
        self.aabbs.append(box)
        self.boxes.extend(world)
        self.num_objects += 1
        return True


def _wood(b: _Builder, dark: bool = False) -> Material:
    base = (0.42, 0.27, 0.15) if dark else (0.62, 0.45, 0.28)
    return Material(PLANKS, float(b.rng.uniform(0.08, 0.16)), b.jitter(base), b.jitter((0.35, 0.22, 0.12)))


def _fabric(b: _Builder, rgb: tuple[float, float, float]) -> Material:
    a = b.jitter(rgb, 0.15)
    pattern = STRIPES if b.rng.random() < 0.35 else FABRIC
    return Material(pattern, float(b.rng.uniform(0.04, 0.12)), a, b.jitter(tuple(0.7 * x for x in a)))


def _plain(b: _Builder, rgb: tuple[float, float, float], amount: float = 0.06) -> Material:
    a = b.jitter(rgb, amount)
    return Material(PLAIN, 0.4, a, b.jitter(tuple(0.88 * x for x in a), 0.02))


Part = tuple[tuple[float, float, float], tuple[float, float, float], int, Material]


def _table(b: _Builder) -> tuple[list[Part], float, float]:
    w, d, h = b.rng.uniform(0.9, 1.6), b.rng.uniform(0.6, 0.95), b.rng.uniform(0.70, 0.78)
    top = _wood(b) if b.rng.random() < 0.7 else _plain(b, (0.85, 0.85, 0.82))
    legs = _plain(b, (0.2, 0.2, 0.22)) if b.rng.random() < 0.5 else top
    parts: list[Part] = [((0, 0, h - 0.02), (w / 2, d / 2, 0.02), C["table"], top)]
    for sx in (-1, 1):
        for sy in (-1, 1):
            parts.append(
                (
                    (sx * (w / 2 - 0.05), sy * (d / 2 - 0.05), (h - 0.04) / 2),
                    (0.025, 0.025, (h - 0.04) / 2),
                    C["table"],
                    legs,
                )
            )
    return parts, w, d


def _chair(b: _Builder) -> tuple[list[Part], float, float]:
    w, seat = 0.46, b.rng.uniform(0.43, 0.48)
    mat = _wood(b) if b.rng.random() < 0.5 else _plain(b, tuple(b.rng.uniform(0.1, 0.9, 3)), 0.0)
    cushion = _fabric(b, tuple(b.rng.uniform(0.15, 0.8, 3)))
    parts: list[Part] = [
        ((0, 0, seat - 0.025), (w / 2, w / 2, 0.025), C["chair"], cushion),
        ((0, -w / 2 + 0.025, seat + 0.23), (w / 2, 0.025, 0.23), C["chair"], mat),
    ]
    for sx in (-1, 1):
        for sy in (-1, 1):
            parts.append(
                (
                    (sx * (w / 2 - 0.03), sy * (w / 2 - 0.03), (seat - 0.05) / 2),
                    (0.02, 0.02, (seat - 0.05) / 2),
                    C["chair"],
                    mat,
                )
            )
    return parts, w, w


def _bed(b: _Builder) -> tuple[list[Part], float, float]:
    w, length = b.rng.uniform(1.0, 1.8), 2.05
    frame = _wood(b, dark=b.rng.random() < 0.5)
    sheet = _fabric(b, (0.85, 0.85, 0.9))
    blanket = _fabric(b, tuple(b.rng.uniform(0.2, 0.85, 3)))
    pillow = _plain(b, (0.95, 0.95, 0.95), 0.03)
    parts: list[Part] = [
        ((0, 0, 0.15), (w / 2, length / 2, 0.15), C["bed"], frame),
        ((0, 0.05, 0.39), (w / 2 - 0.03, length / 2 - 0.08, 0.09), C["bed"], sheet),
        ((0, 0.3, 0.49), (w / 2 - 0.02, length / 2 - 0.45, 0.015), C["bed"], blanket),
        ((0, -length / 2 + 0.03, 0.5), (w / 2, 0.03, 0.5), C["bed"], frame),
    ]
    n_pillows = 2 if w > 1.3 else 1
    for k in range(n_pillows):
        x = 0.0 if n_pillows == 1 else (k - 0.5) * w / 2
        parts.append(((x, -length / 2 + 0.3, 0.53), (min(0.3, w / 4.2), 0.18, 0.06), C["bed"], pillow))
    return parts, w, length


def _sofa(b: _Builder) -> tuple[list[Part], float, float]:
    w, d = b.rng.uniform(1.5, 2.3), b.rng.uniform(0.8, 0.95)
    mat = _fabric(b, tuple(b.rng.uniform(0.1, 0.75, 3)))
    arm = 0.16
    parts: list[Part] = [
        ((0, 0.05, 0.2), (w / 2 - arm, d / 2 - 0.05, 0.2), C["sofa"], mat),
        ((0, -d / 2 + 0.1, 0.45), (w / 2 - arm, 0.1, 0.45), C["sofa"], mat),
        ((-w / 2 + arm / 2, 0, 0.31), (arm / 2, d / 2, 0.31), C["sofa"], mat),
        ((w / 2 - arm / 2, 0, 0.31), (arm / 2, d / 2, 0.31), C["sofa"], mat),
    ]
    return parts, w, d


def _cabinet(b: _Builder) -> tuple[list[Part], float, float]:
    w, d, h = b.rng.uniform(0.6, 1.4), b.rng.uniform(0.4, 0.6), b.rng.choice([0.8, 0.9, 1.2, 1.9])
    body = _wood(b) if b.rng.random() < 0.5 else _plain(b, (0.9, 0.88, 0.85))
    door = _plain(b, tuple(np.clip(np.asarray(body.color_a) * 0.85, 0, 1)), 0.04)
    handle = _plain(b, (0.75, 0.75, 0.78), 0.0)
    parts: list[Part] = [((0, 0, h / 2), (w / 2, d / 2, h / 2), C["cabinet"], body)]
    n_doors = 2 if w > 0.9 else 1
    dw = w / n_doors
    for k in range(n_doors):
        x = -w / 2 + dw * (k + 0.5)
        parts.append(
            ((x, d / 2 + 0.01, h / 2 + 0.02), (dw / 2 - 0.015, 0.01, h / 2 - 0.05), C["cabinet"], door)
        )
        hx = x + (dw / 2 - 0.07) * (1 if k == 0 else -1)
        parts.append(((hx, d / 2 + 0.03, h * 0.6), (0.012, 0.012, 0.06), C["cabinet"], handle))
    return parts, w, d + 0.05


def _bookshelf(b: _Builder) -> tuple[list[Part], float, float]:
    w, d, h = b.rng.uniform(0.7, 1.3), 0.32, b.rng.uniform(1.5, 2.05)
    mat = _wood(b, dark=b.rng.random() < 0.5)
    t = 0.02
    parts: list[Part] = [
        ((-w / 2 + t, 0, h / 2), (t, d / 2, h / 2), C["bookshelf"], mat),
        ((w / 2 - t, 0, h / 2), (t, d / 2, h / 2), C["bookshelf"], mat),
        ((0, -d / 2 + 0.01, h / 2), (w / 2 - 2 * t, 0.01, h / 2), C["bookshelf"], mat),
        ((0, 0, h - t), (w / 2 - 2 * t, d / 2, t), C["bookshelf"], mat),
    ]
    n_shelves = int(b.rng.integers(3, 6))
    gap = (h - t) / n_shelves
    for k in range(n_shelves):
        z = k * gap
        parts.append(((0, 0, z + t), (w / 2 - 2 * t, d / 2, t), C["bookshelf"], mat))
        if b.rng.random() < 0.85:  # a row of books on this shelf
            bh = min(gap - 0.06, b.rng.uniform(0.18, 0.3))
            bw = (w / 2 - 2 * t) * b.rng.uniform(0.5, 0.95)
            books = Material(BOOKS, float(b.rng.uniform(0.025, 0.045)), (0.5, 0.2, 0.2), (0.2, 0.3, 0.6))
            x = -(w / 2 - 2 * t) + bw
            parts.append(((x, 0.0, z + 2 * t + bh / 2), (bw, d / 2 - 0.04, bh / 2), C["bookshelf"], books))
    return parts, w, d


def _floor_lamp(b: _Builder) -> tuple[list[Part], float, float]:
    metal = _plain(b, (0.15, 0.15, 0.16), 0.05)
    shade = _fabric(b, (0.92, 0.86, 0.7))
    h = b.rng.uniform(1.4, 1.75)
    parts: list[Part] = [
        ((0, 0, 0.015), (0.15, 0.15, 0.015), C["lamp"], metal),
        ((0, 0, h / 2), (0.015, 0.015, h / 2 - 0.03), C["lamp"], metal),
        ((0, 0, h + 0.1), (0.18, 0.18, 0.14), C["lamp"], shade),
    ]
    return parts, 0.36, 0.36


def _wall_frame(size: np.ndarray, wall: int, along: float) -> tuple[tuple[float, float], float, float]:
    """Floor position just inside ``wall`` (0: x=0, 1: x=max, 2: y=0, 3: y=max) at ``along`` metres and
    the yaw that makes an object's local +y (its front) face into the room; also the wall's length."""
    if wall == 0:
        return (0.0, along), -math.pi / 2, float(size[1])
    if wall == 1:
        return (float(size[0]), along), math.pi / 2, float(size[1])
    if wall == 2:
        return (along, 0.0), 0.0, float(size[0])
    return (along, float(size[1])), math.pi, float(size[0])


def _place_against_wall(
    b: _Builder, parts: list[Part], w: float, d: float, tries: int = 30, clearance_front: float = 0.0
) -> tuple[int, float] | None:
    """Put an object with its back to a random wall; returns (wall, position along it) or None."""
    for _ in range(tries):
        wall = int(b.rng.integers(4))
        length = float(b.size[1] if wall < 2 else b.size[0])
        if length < w + 0.2:
            continue
        along = float(b.rng.uniform(w / 2 + 0.05, length - w / 2 - 0.05))
        (px, py), yaw, _ = _wall_frame(b.size, wall, along)
        gap = 0.02
        # The object's local origin is its footprint centre; move it off the wall by half its depth.
        nx, ny = -math.sin(yaw), math.cos(yaw)  # local +y in the world: into the room
        pos = (px + nx * (d / 2 + gap), py + ny * (d / 2 + gap))
        clearance = None
        if clearance_front > 0:
            far = np.array([pos[0] + nx * (d / 2 + clearance_front), pos[1] + ny * (d / 2 + clearance_front)])
            ext = np.array([abs(ny) * w / 2, abs(nx) * w / 2])
            lo = np.minimum(np.array(pos) - ext, far - ext)
            hi = np.maximum(np.array(pos) + ext, far + ext)
            clearance = np.array([[lo[0], lo[1], 0.0], [hi[0], hi[1], 0.3]])
        if b.add_object(parts, pos, yaw, clearance):
            return wall, along
    return None


def _wall_panel(
    b: _Builder,
    label: int,
    mats: list[Material],
    w: float,
    h: float,
    z0: float,
    frame: float,
    protrude: float,
    tries: int = 30,
) -> bool:
    """A flat wall-mounted object (door, window, picture): an outer frame box and an inner panel."""
    for _ in range(tries):
        wall = int(b.rng.integers(4))
        length = float(b.size[1] if wall < 2 else b.size[0])
        if length < w + 0.3:
            continue
        along = float(b.rng.uniform(w / 2 + 0.1, length - w / 2 - 0.1))
        (px, py), yaw, _ = _wall_frame(b.size, wall, along)
        nx, ny = -math.sin(yaw), math.cos(yaw)
        pos = (px + nx * protrude / 2, py + ny * protrude / 2)
        parts: list[Part] = [((0, 0, z0 + h / 2), (w / 2, protrude / 2, h / 2), label, mats[0])]
        if frame > 0:
            parts.append(
                ((0, protrude / 2 + 0.004, z0 + h / 2), (w / 2 - frame, 0.004, h / 2 - frame), label, mats[1])
            )
        clearance = None
        if label == C["door"]:  # keep the floor in front of a door free
            ext = np.array([abs(ny) * w / 2, abs(nx) * w / 2])
            far = np.array([pos[0] + nx * 0.9, pos[1] + ny * 0.9])
            lo = np.minimum(np.array(pos) - ext, far - ext)
            hi = np.maximum(np.array(pos) + ext, far + ext)
            clearance = np.array([[lo[0], lo[1], 0.0], [hi[0], hi[1], z0 + h]])
        if b.add_object(parts, pos, yaw, clearance):
            return True
    return False


def _room_materials(rng: np.random.Generator) -> list[Material]:
    def jit(rgb, a=0.06):
        c = np.clip(np.asarray(rgb) + rng.uniform(-a, a, 3), 0.03, 0.97)
        return (float(c[0]), float(c[1]), float(c[2]))

    wall_base = [(0.88, 0.85, 0.78), (0.78, 0.84, 0.88), (0.86, 0.8, 0.74), (0.8, 0.86, 0.78)][
        int(rng.integers(4))
    ]
    if rng.random() < 0.3:
        wall = Material(
            STRIPES, float(rng.uniform(0.08, 0.2)), jit(wall_base), jit(tuple(0.85 * x for x in wall_base))
        )
    else:
        wall = Material(PLAIN, 0.5, jit(wall_base), jit(tuple(0.93 * x for x in wall_base)))
    kind = rng.random()
    if kind < 0.45:
        floor = Material(
            PLANKS, float(rng.uniform(0.12, 0.2)), jit((0.6, 0.42, 0.26)), jit((0.42, 0.28, 0.16))
        )
    elif kind < 0.8:
        g = rng.uniform(0.45, 0.8)
        floor = Material(
            TILES, float(rng.uniform(0.3, 0.6)), jit((g, g, g * 0.95)), jit((g * 0.8, g * 0.8, g * 0.78))
        )
    else:
        floor = Material(FABRIC, 0.05, jit((0.45, 0.35, 0.3), 0.15), jit((0.35, 0.28, 0.25), 0.1))
    ceiling = Material(PLAIN, 0.6, jit((0.95, 0.95, 0.93), 0.03), jit((0.9, 0.9, 0.88), 0.02))
    return [wall, wall, wall, wall, floor, ceiling]


def make_scene(rng: np.random.Generator) -> Scene:
    """Sample a furnished room (see module docstring)."""
    size = np.array([rng.uniform(4.0, 7.0), rng.uniform(3.6, 6.0), rng.uniform(2.5, 3.0)])
    b = _Builder(rng=rng, size=size)
    # Doors and windows first: they reserve wall and floor space.
    _wall_panel(b, C["door"], [_wood(b, dark=True), _wood(b, dark=True)], 0.9, 2.05, 0.0, 0.06, 0.05)
    n_windows = int(rng.integers(1, 3))
    for _ in range(n_windows):
        glass = Material(PLAIN, 0.8, b.jitter((0.72, 0.85, 0.98), 0.04), b.jitter((0.9, 0.95, 1.0), 0.02))
        frame = _plain(b, (0.95, 0.95, 0.95), 0.02)
        _wall_panel(
            b,
            C["window"],
            [frame, glass],
            float(rng.uniform(0.9, 1.6)),
            float(rng.uniform(1.0, 1.4)),
            float(rng.uniform(0.85, 1.0)),
            0.07,
            0.06,
        )
    # Large furniture against the walls.
    wall_items = [_bed, _sofa, _cabinet, _bookshelf, _cabinet, _bookshelf, _cabinet]
    rng.shuffle(wall_items)
    n_wall = int(rng.integers(3, 7))
    for make in wall_items[:n_wall]:
        parts, w, d = make(b)
        _place_against_wall(b, parts, w, d, clearance_front=0.5 if make in (_bed, _sofa) else 0.3)
    # A desk with a chair against a wall.
    if rng.random() < 0.6:
        parts, w, d = _table(b)
        spot = _place_against_wall(b, parts, w, d)
        if spot is not None:
            wall, along = spot
            (px, py), yaw, _ = _wall_frame(size, wall, along)
            nx, ny = -math.sin(yaw), math.cos(yaw)
            cparts, _, _ = _chair(b)
            b.add_object(cparts, (px + nx * (d + 0.35), py + ny * (d + 0.35)), yaw + math.pi)
    # A table with chairs in the room.
    parts, w, d = _table(b)
    for _ in range(30):
        pos = (float(rng.uniform(1.0, size[0] - 1.0)), float(rng.uniform(1.0, size[1] - 1.0)))
        yaw = float(rng.choice([0.0, math.pi / 2]) + rng.uniform(-0.3, 0.3))
        if b.add_object(parts, pos, yaw):
            table = len(b.aabbs) - 1
            c, s = math.cos(yaw), math.sin(yaw)
            for side in (-1, 1):
                for k in range(int(rng.integers(1, 3))):
                    off = (k - 0.5) * 0.55 if w > 1.2 else 0.0
                    lx, ly = off, side * (d / 2 + 0.26)
                    cparts, _, _ = _chair(b)
                    b.add_object(
                        cparts,
                        (pos[0] + c * lx - s * ly, pos[1] + s * lx + c * ly),
                        yaw + (0.0 if side < 0 else math.pi) + float(rng.uniform(-0.2, 0.2)),
                        ignore=table,
                    )
            break
    # Floor lamps in corners, pictures on free walls.
    for _ in range(int(rng.integers(0, 3))):
        parts, w, d = _floor_lamp(b)
        cx = 0.35 if rng.random() < 0.5 else size[0] - 0.35
        cy = 0.35 if rng.random() < 0.5 else size[1] - 0.35
        b.add_object(parts, (float(cx), float(cy)), 0.0)
    for _ in range(int(rng.integers(1, 4))):
        art = Material(
            FABRIC,
            float(rng.uniform(0.05, 0.2)),
            b.jitter(tuple(rng.uniform(0.1, 0.9, 3)), 0.0),
            b.jitter(tuple(rng.uniform(0.1, 0.9, 3)), 0.0),
        )
        frame = _plain(b, (0.12, 0.1, 0.08) if rng.random() < 0.5 else (0.85, 0.75, 0.5), 0.03)
        pw, ph = float(rng.uniform(0.4, 1.0)), float(rng.uniform(0.3, 0.8))
        _wall_panel(b, C["picture"], [frame, art], pw, ph, float(rng.uniform(1.3, 1.7)), 0.04, 0.03)
    return _assemble(size, _room_materials(rng), b, rng)


def _assemble(size: np.ndarray, room: list[Material], b: _Builder, rng: np.random.Generator) -> Scene:
    n = 6 + len(b.boxes)
    center = np.zeros((n, 3))
    half = np.zeros((n, 3))
    yaw = np.zeros(n)
    label = np.zeros(n, dtype=np.int64)
    mats: list[Material] = list(room)
    label[:6] = [C["wall"]] * 4 + [C["floor"], C["ceiling"]]
    for i, (c, h, y, lab, mat) in enumerate(b.boxes):
        center[6 + i], half[6 + i], yaw[6 + i], label[6 + i] = c, h, y, lab
        mats.append(mat)
    return Scene(
        size=size,
        center=center,
        half=half,
        yaw=yaw,
        label=label,
        pattern=np.array([m.pattern for m in mats], dtype=np.int64),
        scale=np.array([m.scale for m in mats]),
        color_a=np.array([m.color_a for m in mats]),
        color_b=np.array([m.color_b for m in mats]),
        seed=rng.integers(0, 2**31, n).astype(np.uint64),
        light_pos=np.array([size[0] / 2, size[1] / 2, size[2] - 0.3]),
        num_objects=b.num_objects,
    )


# ---------------------------------------------------------------------------------------------- texture


def _hash01(i: np.ndarray, j: np.ndarray, seed: np.ndarray) -> np.ndarray:
    """Deterministic pseudo-random numbers in [0, 1) from integer lattice points and per-surface seeds.

    uint32 arithmetic wraps modulo 2^32 (an integer hash in the style of xxHash's avalanche steps).
    """
    h = i.astype(np.int64).astype(np.uint32) * np.uint32(374761393)
    h ^= j.astype(np.int64).astype(np.uint32) * np.uint32(668265263)
    h += seed.astype(np.uint32) * np.uint32(2246822519)
    h ^= h >> np.uint32(13)
    h *= np.uint32(1274126177)
    h ^= h >> np.uint32(16)
    return h.astype(np.float32) * np.float32(1.0 / 2**32)


def _value_noise(x: np.ndarray, y: np.ndarray, seed: np.ndarray) -> np.ndarray:
    """Smooth 2D value noise in [0, 1) (lattice spacing 1)."""
    xi, yi = np.floor(x), np.floor(y)
    fx, fy = x - xi, y - yi
    fx = fx * fx * (3 - 2 * fx)
    fy = fy * fy * (3 - 2 * fy)
    a = _hash01(xi, yi, seed)
    b = _hash01(xi + 1, yi, seed)
    c = _hash01(xi, yi + 1, seed)
    d = _hash01(xi + 1, yi + 1, seed)
    return (a + (b - a) * fx) * (1 - fy) + (c + (d - c) * fx) * fy


def surface_albedo(scene: Scene, surf: np.ndarray, s: np.ndarray, t: np.ndarray) -> np.ndarray:
    """Albedo ``[N, 3]`` float32 in [0, 1] of surfaces ``surf`` ``[N]`` at surface coordinates ``s, t``
    (metres)."""
    seed = scene.seed[surf]
    sc = scene.scale[surf].astype(np.float32)
    pat = scene.pattern[surf]
    s = s.astype(np.float32)
    t = t.astype(np.float32)
    coarse = _value_noise(s / sc / 4, t / sc / 4, seed)
    fine = _value_noise(s * 40, t * 40, seed + np.uint64(7))
    m = np.zeros_like(s)
    bright = np.ones_like(s)
    # PLAIN: soft blotches.
    sel = pat == PLAIN
    m[sel] = 0.6 * coarse[sel] + 0.15 * fine[sel]
    # TILES: checkerboard with dark grout lines.
    sel = pat == TILES
    if sel.any():
        us, vs = s[sel] / sc[sel], t[sel] / sc[sel]
        m[sel] = ((np.floor(us) + np.floor(vs)) % 2) * 0.8 + 0.2 * fine[sel]
        grout = (np.minimum(us - np.floor(us), vs - np.floor(vs)) < 0.03).astype(np.float32)
        bright[sel] = 1 - 0.45 * grout
    # STRIPES: soft-edged stripes along s.
    sel = pat == STRIPES
    if sel.any():
        m[sel] = np.clip(np.sin(2 * np.pi * s[sel] / (2 * sc[sel])) * 3, -1, 1) * 0.5 + 0.5
    # PLANKS: boards of width `scale` along s, each with its own tone, grain and dark seams.
    sel = pat == PLANKS
    if sel.any():
        board = np.floor(t[sel] / sc[sel])
        tone = _hash01(board, board * 0 + 3, seed[sel])
        grain = 0.5 + 0.5 * np.sin(s[sel] * 25 + 6 * _value_noise(s[sel] * 2, t[sel] * 30, seed[sel]))
        m[sel] = 0.55 * tone + 0.35 * grain
        seam = (t[sel] / sc[sel] - board) < 0.04
        bright[sel] = 1 - 0.35 * seam
    # FABRIC: two octaves of noise.
    sel = pat == FABRIC
    m[sel] = 0.7 * coarse[sel] + 0.3 * fine[sel]
    color = (
        scene.color_a[surf].astype(np.float32) * (1 - m)[:, None]
        + scene.color_b[surf].astype(np.float32) * m[:, None]
    )
    # BOOKS: spines of varying width with their own colors along s.
    sel = pat == BOOKS
    if sel.any():
        spine = np.floor(s[sel] / sc[sel] + 0.6 * _value_noise(s[sel] / sc[sel], s[sel] * 0, seed[sel]))
        rgb = np.stack([_hash01(spine, spine * 0 + k, seed[sel]) for k in range(3)], axis=1)
        color[sel] = 0.12 + 0.7 * rgb
    return np.clip(color * bright[:, None], 0, 1)


def surface_shading(scene: Scene, points: np.ndarray, normals: np.ndarray) -> np.ndarray:
    """View-independent Lambertian light ``[N]`` (ambient + directional + ceiling point light)."""
    sun = np.array([0.35, 0.55, 0.76], dtype=np.float32)
    sun /= np.linalg.norm(sun)
    to_light = scene.light_pos.astype(np.float32) - points
    dist = np.linalg.norm(to_light, axis=1).clip(1e-3)
    point = np.maximum((normals * to_light).sum(1) / dist, 0) / (1 + (dist / 3.5) ** 2)
    return 0.38 + 0.3 * np.maximum(normals @ sun, 0) + 0.55 * point


# -------------------------------------------------------------------------------------------- rendering


def intrinsics_for(size_hw: tuple[int, int]) -> np.ndarray:
    """Pinhole intrinsics ``[3, 3]`` with a Kinect-like ~63 deg horizontal field of view."""
    h, w = size_hw
    f = 0.8125 * w
    return np.array([[f, 0.0, (w - 1) / 2], [0.0, f, (h - 1) / 2], [0.0, 0.0, 1.0]])


def _rot_z(yaw: float) -> np.ndarray:
    c, s = math.cos(yaw), math.sin(yaw)
    return np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])


def look_pose(position: np.ndarray, yaw: float, pitch: float) -> np.ndarray:
    """Camera-to-world 4x4 (OpenCV camera axes) at ``position`` looking along heading ``yaw`` (radians,
    about z from +x) tilted by ``pitch`` (radians, negative = looking down)."""
    f = np.array([math.cos(pitch) * math.cos(yaw), math.cos(pitch) * math.sin(yaw), math.sin(pitch)])
    right = np.cross(f, [0.0, 0.0, 1.0])
    right /= np.linalg.norm(right)
    down = np.cross(f, right)
    T = np.eye(4)
    T[:3, 0], T[:3, 1], T[:3, 2], T[:3, 3] = right, down, f, position
    return T


def camera_path(scene: Scene, num_frames: int, rng: np.random.Generator) -> np.ndarray:
    """``[M, 4, 4]`` camera-to-world poses on a loop around the room centre, looking across the room.

    The loop stays >= 1.1 m from the walls at 1.3-1.6 m height, above all furniture placed away from
    the walls, so the camera is never inside an object.
    """
    cx, cy = scene.size[0] / 2, scene.size[1] / 2
    rx, ry = max(0.25, cx - 1.1), max(0.25, cy - 1.1)
    start = rng.uniform(0, 2 * math.pi)
    sweep = rng.uniform(1.4, 2.0) * math.pi * (1 if rng.random() < 0.5 else -1)
    phase = rng.uniform(0, 2 * math.pi, 3)
    poses = []
    for k in range(num_frames):
        a = start + sweep * k / max(1, num_frames)
        pos = np.array(
            [cx + rx * math.cos(a), cy + ry * math.sin(a), 1.45 + 0.12 * math.sin(2 * a + phase[0])]
        )
        yaw = a + math.pi + 0.55 * math.sin(1.5 * a + phase[1])
        pitch = -math.radians(22 + 8 * math.sin(a + phase[2]))
        poses.append(look_pose(pos, yaw, pitch))
    return np.stack(poses)


@dataclass
class Rendering:
    """One rendered frame: ``rgb`` uint8 ``[H, W, 3]``, ``depth`` float32 ``[H, W]`` metres (z-depth, exact),
    ``label`` int64 ``[H, W]`` class per pixel, ``surface`` int64 ``[H, W]`` surface index per pixel."""

    rgb: np.ndarray
    depth: np.ndarray
    label: np.ndarray
    surface: np.ndarray


_OTHER_AXES = np.array([[1, 2], [0, 2], [0, 1]])


def render(scene: Scene, cam_to_world: np.ndarray, K: np.ndarray, size_hw: tuple[int, int]) -> Rendering:
    """Ray-cast the scene from one camera (pixel centres at integer ``(u, v)``, OpenCV camera axes)."""
    H, W = size_hw
    R = cam_to_world[:3, :3].astype(np.float32)
    o = cam_to_world[:3, 3]
    u = (np.arange(W, dtype=np.float32) - np.float32(K[0, 2])) / np.float32(K[0, 0])
    v = (np.arange(H, dtype=np.float32) - np.float32(K[1, 2])) / np.float32(K[1, 1])
    # World ray directions scaled so that the ray parameter t equals z-depth (camera-frame dz = 1),
    # kept as three [H, W] planes: numpy reduces over a length-3 last axis slowly.
    d = [u[None, :] * R[a, 0] + v[:, None] * R[a, 1] + R[a, 2] for a in range(3)]
    with np.errstate(divide="ignore", invalid="ignore"):
        # Room: the camera is inside; each ray exits through the nearest face in its direction.
        t_axis = []
        for a in range(3):
            t = np.where(d[a] > 0, np.float32(scene.size[a] - o[a]), np.float32(-o[a])) / d[a]
            t_axis.append(np.where(np.isfinite(t) & (t > 0), t, np.float32(np.inf)))
    face_axis = np.where(t_axis[0] <= t_axis[1], 0, 1)
    face_axis = np.where(np.minimum(t_axis[0], t_axis[1]) <= t_axis[2], face_axis, 2)
    best_t = np.minimum(np.minimum(t_axis[0], t_axis[1]), t_axis[2])
    positive = np.choose(face_axis, [d[0] > 0, d[1] > 0, d[2] > 0])
    surface = face_axis * 2 + positive
    # Boxes: slab test in each box's frame, restricted to the pixels its projected corners cover.
    # The corners of all boxes are projected at once: [B, 8, 3] in the camera frame.
    nb = scene.num_boxes
    signs = np.array([[sx, sy, sz] for sx in (-1, 1) for sy in (-1, 1) for sz in (-1, 1)], dtype=np.float64)
    cy_, sy_ = np.cos(scene.yaw[6:]), np.sin(scene.yaw[6:])
    loc = signs[None] * scene.half[6:, None]
    world = np.stack(
        [
            cy_[:, None] * loc[..., 0] - sy_[:, None] * loc[..., 1],
            sy_[:, None] * loc[..., 0] + cy_[:, None] * loc[..., 1],
            loc[..., 2],
        ],
        -1,
    )
    rel = world + (scene.center[6:] - o)[:, None]
    cam = np.einsum("bkj,ji->bki", rel, cam_to_world[:3, :3])  # R^T (X - o) for each corner
    front = cam[..., 2] > NEAR
    zc = np.where(front, cam[..., 2], 1.0)
    pu = K[0, 0] * cam[..., 0] / zc + K[0, 2]
    pv = K[1, 1] * cam[..., 1] / zc + K[1, 2]
    rects = np.stack(
        [np.floor(pu.min(1)), np.ceil(pu.max(1)) + 1, np.floor(pv.min(1)), np.ceil(pv.max(1)) + 1], 1
    )
    rects = np.clip(rects, 0, [W, W, H, H]).astype(np.int64)
    for b in range(nb):
        if not front[b].any():
            continue  # entirely behind the camera
        if front[b].all():
            u0, u1, v0, v1 = rects[b]
            if u0 >= u1 or v0 >= v1:
                continue
        else:  # straddles the image plane: its projection is unbounded, test every pixel
            u0, u1, v0, v1 = 0, W, 0, H
        si = 6 + b
        c, h, yaw = scene.center[si], scene.half[si], scene.yaw[si]
        rz = _rot_z(yaw)
        cs, sn = np.float32(math.cos(yaw)), np.float32(math.sin(yaw))
        ol = rz.T @ (o - c)
        dx, dy = d[0][v0:v1, u0:u1], d[1][v0:v1, u0:u1]
        dl = (cs * dx + sn * dy, -sn * dx + cs * dy, d[2][v0:v1, u0:u1])
        lo, hi = [], []
        with np.errstate(divide="ignore", invalid="ignore"):
            for a in range(3):
                inv = np.float32(1.0) / dl[a]
                t1 = np.float32(-h[a] - ol[a]) * inv
                t2 = np.float32(h[a] - ol[a]) * inv
                lo.append(np.minimum(t1, t2))
                hi.append(np.maximum(t1, t2))
        tnear = np.maximum(np.maximum(lo[0], lo[1]), lo[2])
        tfar = np.minimum(np.minimum(hi[0], hi[1]), hi[2])
        bt = best_t[v0:v1, u0:u1]
        hit = (tnear <= tfar) & (tnear > NEAR) & (tnear < bt)
        if not hit.any():
            continue
        bt[hit] = tnear[hit]
        surface[v0:v1, u0:u1][hit] = si
        # The entry face is on the axis whose slab was entered last.
        l0, l1, l2 = lo[0][hit], lo[1][hit], lo[2][hit]
        face_axis[v0:v1, u0:u1][hit] = np.where((l0 >= l1) & (l0 >= l2), 0, np.where(l1 >= l2, 1, 2))
    d = np.stack(d, -1)
    o = o.astype(np.float32)
    # Shading at the hit points.
    p = o + d * best_t[..., None]
    flat_p = p.reshape(-1, 3)
    surf = surface.reshape(-1)
    fa = face_axis.reshape(-1)
    n = surf.shape[0]
    rows = np.arange(n)
    local = _to_local(scene, surf, flat_p)
    s = local[rows, _OTHER_AXES[fa, 0]]
    t = local[rows, _OTHER_AXES[fa, 1]]
    dflat = d.reshape(-1, 3)
    normals = _face_normals(scene, surf, fa, dflat)
    albedo = surface_albedo(scene, surf, s, t)
    light = surface_shading(scene, flat_p, normals)
    rgb = np.clip(albedo * light[:, None] * 255.0 + 0.5, 0, 255).astype(np.uint8).reshape(H, W, 3)
    return Rendering(rgb=rgb, depth=best_t.astype(np.float32), label=scene.label[surface], surface=surface)


def _to_local(scene: Scene, surf: np.ndarray, p: np.ndarray) -> np.ndarray:
    """World points ``[N, 3]`` → box-local coordinates offset by the half extents (so >= 0 on the box)."""
    tab = scene.tables32
    c, h, cs, sn = tab["center"][surf], tab["half"][surf], tab["cos"][surf], tab["sin"][surf]
    q = p - c
    return np.stack([cs * q[:, 0] + sn * q[:, 1], -sn * q[:, 0] + cs * q[:, 1], q[:, 2]], 1) + h


def _face_normals(scene: Scene, surf: np.ndarray, face_axis: np.ndarray, dirs: np.ndarray) -> np.ndarray:
    """World normals ``[N, 3]`` of the faces hit by rays ``dirs`` (pointing against the ray)."""
    cs, sn = scene.tables32["cos"][surf], scene.tables32["sin"][surf]
    dl = np.stack([cs * dirs[:, 0] + sn * dirs[:, 1], -sn * dirs[:, 0] + cs * dirs[:, 1], dirs[:, 2]], 1)
    rows = np.arange(surf.shape[0])
    nl = np.zeros_like(dl)
    nl[rows, face_axis] = -np.sign(dl[rows, face_axis])
    return np.stack([cs * nl[:, 0] - sn * nl[:, 1], sn * nl[:, 0] + cs * nl[:, 1], nl[:, 2]], 1)


# ---------------------------------------------------------------------------------------- labeled cloud


def sample_cloud(scene: Scene, rng: np.random.Generator, points_per_m2: float = 800.0) -> LabeledCloud:
    """Sample every visible-from-inside surface uniformly (``points_per_m2``) with its class and shaded color.

    Drops points inside other boxes or on box faces resting on the floor (hidden surfaces).
    """
    pts, surf_ids, normals_local, faxes = [], [], [], []
    for si in range(scene.center.shape[0]):
        h = scene.half[si] if si >= 6 else scene.size / 2
        for axis in range(3):
            a0, a1 = _OTHER_AXES[axis]
            area = 4 * h[a0] * h[a1]
            count = int(rng.poisson(area * points_per_m2))
            if count == 0:
                continue
            for sign in (-1.0, 1.0):
                if si < 6 and si != axis * 2 + (sign > 0):
                    continue  # a room surface is a single face of the room box
                q = np.empty((count, 3))
                q[:, a0] = rng.uniform(-h[a0], h[a0], count)
                q[:, a1] = rng.uniform(-h[a1], h[a1], count)
                q[:, axis] = sign * h[axis]
                n = np.zeros(3)
                n[axis] = sign if si >= 6 else -sign  # room faces point into the room
                pts.append(q)
                surf_ids.append(np.full(count, si))
                normals_local.append(np.tile(n, (count, 1)))
                faxes.append(np.full(count, axis))
    q = np.concatenate(pts)
    surf = np.concatenate(surf_ids)
    nl = np.concatenate(normals_local)
    fa = np.concatenate(faxes)
    # Local (centred) → world.
    centers = np.where(surf[:, None] >= 6, scene.center[surf], scene.size / 2)
    yaw = scene.yaw[surf]
    cs, sn = np.cos(yaw), np.sin(yaw)
    xyz = np.stack([cs * q[:, 0] - sn * q[:, 1], sn * q[:, 0] + cs * q[:, 1], q[:, 2]], 1) + centers
    nw = np.stack([cs * nl[:, 0] - sn * nl[:, 1], sn * nl[:, 0] + cs * nl[:, 1], nl[:, 2]], 1)
    keep = (xyz >= -1e-6).all(1) & (xyz <= scene.size + 1e-6).all(1)
    # Box faces lying on the room's boundary and facing it (backs of wall panels, bottoms on the floor).
    eps = 1e-4
    outward = ((xyz < eps) & (nw < -0.5)) | ((xyz > scene.size - eps) & (nw > 0.5))
    keep &= ~((surf >= 6) & outward.any(1))
    # Points covered by another box (touching boxes included: boxes grow by 1 mm for this test).
    # Candidates come from the box's x-extent in x-sorted order, so each box tests few points.
    order = np.argsort(xyz[:, 0], kind="stable")
    xs = xyz[order, 0]
    eps = 1e-3
    for si in range(6, scene.center.shape[0]):
        c, h, y = scene.center[si], scene.half[si] + eps, scene.yaw[si]
        cs, sn = math.cos(y), math.sin(y)
        reach = abs(cs) * h[0] + abs(sn) * h[1]
        idx = order[np.searchsorted(xs, c[0] - reach) : np.searchsorted(xs, c[0] + reach, side="right")]
        p = xyz[idx] - c
        inside = (np.abs(cs * p[:, 0] + sn * p[:, 1]) < h[0]) & (np.abs(-sn * p[:, 0] + cs * p[:, 1]) < h[1])
        inside &= (np.abs(p[:, 2]) < h[2]) & (surf[idx] != si)
        keep[idx[inside]] = False
    xyz, surf, nw, fa = xyz[keep], surf[keep], nw[keep], fa[keep]
    xyz32 = xyz.astype(np.float32)
    local = _to_local(scene, surf, xyz32)  # room surfaces: world coordinates, as in render()
    rows = np.arange(surf.shape[0])
    s = local[rows, _OTHER_AXES[fa, 0]]
    t = local[rows, _OTHER_AXES[fa, 1]]
    albedo = surface_albedo(scene, surf, s, t)
    light = surface_shading(scene, xyz32, nw.astype(np.float32))
    rgb = np.clip(albedo * light[:, None] * 255.0 + 0.5, 0, 255).astype(np.uint8)
    return LabeledCloud(xyz=xyz32, rgb=rgb, labels=scene.label[surf].astype(np.int32))


# ----------------------------------------------------------------------------------------------- driver


def _scene_name(index: int) -> str:
    return f"synth{index:04d}"


def _options(
    num_scenes: int, frames_per_scene: int, seed: int, image_size: tuple[int, int], points_per_m2: float
) -> dict[str, Any]:
    return {
        "format": FORMAT,
        "version": VERSION,
        "num_scenes": int(num_scenes),
        "frames_per_scene": int(frames_per_scene),
        "seed": int(seed),
        "image_size": [int(image_size[0]), int(image_size[1])],
        "points_per_m2": float(points_per_m2),
    }


def _scene_job(job: dict[str, Any]) -> dict[str, Any]:
    """Generate, render and write one scene (frames + cloud file). Runs in a worker process."""
    out = Path(job["out"])
    i, seed = job["index"], job["seed"]
    size_hw = tuple(job["image_size"])
    name = _scene_name(i)
    scene_dir = out / "frames" / name
    meta = {"generator": FORMAT, "seed": seed, "scene_index": i, "image_size": list(size_hw)}
    cloud_path = out / "clouds" / f"{name}.npz"
    rng = np.random.default_rng([seed, i])
    scene = make_scene(rng)
    poses = camera_path(scene, job["frames"], rng)
    cloud_rng = np.random.default_rng([seed, i, 1])
    t0 = time.perf_counter()
    done = (
        is_complete_scene(scene_dir)
        and json.loads((scene_dir / "frames.json").read_text()).get("meta") == meta
    )
    if not done:
        K = intrinsics_for(size_hw)
        with FrameWriter(scene_dir, source=f"synthetic:{name}", intrinsics=K, meta=meta) as w:
            for k, T in enumerate(poses):
                r = render(scene, T, K, size_hw)
                depth_mm = np.round(r.depth * 1000.0)
                depth_mm = np.where((depth_mm > 0) & (depth_mm <= 65535), depth_mm, 0).astype(np.uint16)
                w.add(k, r.rgb, depth_mm, T)
    cloud = sample_cloud(scene, cloud_rng, job["points_per_m2"])
    sha = write_cloud(cloud_path, cloud, num_classes=len(CLASS_NAMES))
    return {
        "name": name,
        "frames": len(poses),
        "rendered": not done,
        "seconds": time.perf_counter() - t0,
        "num_points": cloud.num_points,
        "sha256": sha,
        "num_boxes": scene.num_boxes,
    }


def generate(
    out_dir: str | Path,
    num_scenes: int = 4,
    frames_per_scene: int = 40,
    seed: int = 0,
    image_size: tuple[int, int] = (240, 320),
    *,
    points_per_m2: float = 800.0,
    workers: int = 1,
    overwrite: bool = False,
    progress: bool = True,
) -> dict[str, Any]:
    """Write the synthetic dataset to ``out_dir`` (``frames/``, ``clouds/``, ``dataset.json``).

    Returns a summary (scenes, frames, frames rendered, points, seconds, frames per second, roots).

    Resumable: scenes whose export is already complete with the same options are not re-rendered; if
    ``dataset.json`` exists with the same options nothing is done. A folder made with other options is
    refused unless ``overwrite=True`` (which deletes its ``frames/``, ``clouds/`` and ``dataset.json``).
    """
    out = Path(out_dir)
    opts = _options(num_scenes, frames_per_scene, seed, image_size, points_per_m2)
    marker = out / DATASET_JSON
    if marker.is_file():
        prev = json.loads(marker.read_text())
        if prev.get("options") == opts:
            log.info("%s is complete (same options); nothing to do", out)
            return dict(prev.get("summary", {}), skipped_existing=True)
        if not overwrite:
            raise FileExistsError(
                f"{marker}: made with options {prev.get('options')}, not {opts}; "
                "use another --out folder or pass overwrite=True / --overwrite"
            )
    if overwrite:
        marker.unlink(missing_ok=True)
        for sub in ("frames", "clouds"):
            shutil.rmtree(out / sub, ignore_errors=True)
    if num_scenes < 1 or frames_per_scene < 1:
        raise ValueError("need at least one scene and one frame per scene")
    (out / "clouds").mkdir(parents=True, exist_ok=True)
    jobs = [
        {
            "out": str(out),
            "index": i,
            "seed": int(seed),
            "frames": int(frames_per_scene),
            "image_size": list(image_size),
            "points_per_m2": float(points_per_m2),
        }
        for i in range(num_scenes)
    ]
    t0 = time.perf_counter()
    results, failed = [], []
    for r in run_jobs(
        _scene_job,
        jobs,
        workers=workers,
        desc="synthetic scenes",
        key=lambda j: _scene_name(j["index"]),
        progress=progress,
    ):
        if r.ok:
            results.append(r.value)
        else:
            failed.append({"input": r.key, "reason": r.error})
            log.error("scene %s failed: %s", r.key, r.error)
    if failed:
        raise RuntimeError(f"synthetic generation failed for {len(failed)} scenes: {failed}")
    index = CloudIndex(root=out / "clouds", class_names=list(CLASS_NAMES), extra={"source": FORMAT})
    for r in sorted(results, key=lambda r: r["name"]):
        index.scenes.append(CloudRecord(r["name"], f"{r['name']}.npz", r["num_points"], r["sha256"]))
    index.write()
    elapsed = time.perf_counter() - t0
    rendered = sum(r["frames"] for r in results if r["rendered"])
    summary = {
        "scenes": len(results),
        "frames": sum(r["frames"] for r in results),
        "frames_rendered": rendered,
        "points": sum(r["num_points"] for r in results),
        "seconds": round(elapsed, 3),
        "frames_per_second": round(rendered / elapsed, 2) if rendered else None,
        "frames_root": str(out / "frames"),
        "clouds_root": str(out / "clouds"),
    }
    atomic_write_json(marker, {"options": opts, "summary": summary, "class_names": CLASS_NAMES})
    log.info("synthetic dataset: %s", summary)
    return summary


def _parse_size(text: str) -> tuple[int, int]:
    try:
        h, w = (int(x) for x in text.lower().split("x"))
    except ValueError as err:
        raise argparse.ArgumentTypeError(f"image size must look like 240x320 (HxW), got {text!r}") from err
    if h < 8 or w < 8:
        raise argparse.ArgumentTypeError("image size must be at least 8x8")
    return h, w


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawTextHelpFormatter
    )
    p.add_argument("--out", required=True, type=Path, help="output folder (frames/, clouds/, dataset.json)")
    p.add_argument("--scenes", type=int, default=4, help="number of rooms (default 4)")
    p.add_argument("--frames", type=int, default=40, help="frames rendered per room (default 40)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--image-size", type=_parse_size, default=(240, 320), help="HxW (default 240x320)")
    p.add_argument("--points-per-m2", type=float, default=800.0, help="labeled cloud density (default 800)")
    p.add_argument("--workers", type=int, default=1)
    p.add_argument("--overwrite", action="store_true", help="replace a dataset made with other options")
    p.add_argument("-v", "--verbose", action="store_true")
    a = p.parse_args(argv)
    setup_logging(a.verbose)
    summary = generate(
        a.out,
        a.scenes,
        a.frames,
        a.seed,
        a.image_size,
        points_per_m2=a.points_per_m2,
        workers=a.workers,
        overwrite=a.overwrite,
    )
    print(json.dumps(summary, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
