"""Procedural textures and shading of the synthetic scenes: albedo from surface coordinates (metres)
and view-independent Lambertian light, so a surface looks the same from every camera."""

from __future__ import annotations

import numpy as np

from pixvox.prep.synthetic.scene import BOOKS, FABRIC, PLAIN, PLANKS, STRIPES, TILES, Scene


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
