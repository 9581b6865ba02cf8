"""Furniture of the synthetic rooms: object builders (tables, chairs, beds, ...) made of boxes with
procedural materials, and the collision-checked placement of objects in a room."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from pixvox.prep.synthetic.scene import BOOKS, FABRIC, PLAIN, PLANKS, STRIPES, C, Material


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
