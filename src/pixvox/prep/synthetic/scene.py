"""The synthetic scene model: semantic classes, procedural materials and a furnished room of boxes.

A :class:`Scene` is a room ``[0, size_x] x [0, size_y] x [0, size_z]`` (metres, world z up) whose six
faces are surfaces ``0..5`` and whose furniture is a list of yaw-rotated boxes (surfaces ``6..``), each
with a class label and a procedural material. Built by :func:`pixvox.prep.synthetic.room.make_scene`.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

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

#: Nearest surface distance the renderer reports (metres); nothing in a scene is closer to the camera.
NEAR = 1e-3


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
