"""Room layout of the synthetic scenes: doors, windows and pictures on the walls, furniture against the
walls and in the room, wall and floor materials; :func:`make_scene` samples a furnished room."""

from __future__ import annotations

import math

import numpy as np

from pixvox.prep.synthetic.furniture import (
    Part,
    _bed,
    _bookshelf,
    _Builder,
    _cabinet,
    _chair,
    _floor_lamp,
    _plain,
    _sofa,
    _table,
    _wood,
)
from pixvox.prep.synthetic.scene import FABRIC, PLAIN, PLANKS, STRIPES, TILES, C, Material, Scene


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


def _wall_spot(
    b: _Builder, w: float, spare: float, margin: float
) -> tuple[int, float, tuple[float, float], float] | None:
    """A random place for an object ``w`` metres wide along a random wall: (wall, position along it,
    floor position at the wall, yaw facing into the room), or None when that wall is shorter than
    ``w + spare``; the object keeps ``margin`` metres from the wall's ends."""
    wall = int(b.rng.integers(4))
    length = float(b.size[1] if wall < 2 else b.size[0])
    if length < w + spare:
        return None
    along = float(b.rng.uniform(w / 2 + margin, length - w / 2 - margin))
    pos, yaw, _ = _wall_frame(b.size, wall, along)
    return wall, along, pos, yaw


def _place_against_wall(
    b: _Builder, parts: list[Part], w: float, d: float, tries: int = 30, clearance_front: float = 0.0
) -> tuple[int, float] | None:
    """Put an object with its back to a random wall; returns (wall, position along it) or None."""
    for _ in range(tries):
        spot = _wall_spot(b, w, spare=0.2, margin=0.05)
        if spot is None:
            continue
        wall, along, (px, py), yaw = spot
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
        spot = _wall_spot(b, w, spare=0.3, margin=0.1)
        if spot is None:
            continue
        _, _, (px, py), yaw = spot
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
