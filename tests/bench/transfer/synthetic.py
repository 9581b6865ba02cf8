"""Tiny synthetic inputs of the transfer benchmark: a labeled room in Pointcept's layout and an
RGB-D sequence in 7-Scenes' layout (random values; for the readers and the pipeline, not for numbers)."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def pointcept_room(folder: Path, n: int = 50, seed: int = 0, size: float = 2.0) -> None:
    """``coord/color/segment20.npy`` of ``n`` random points in a ``size`` metre cube."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True)
    np.save(folder / "coord.npy", rng.uniform(0, size, (n, 3)).astype(np.float32))
    np.save(folder / "color.npy", rng.integers(0, 256, (n, 3)).astype(np.uint8))
    np.save(folder / "segment20.npy", rng.integers(-1, 20, n).astype(np.int64))


def seven_scenes_sequence(folder: Path, frames: int, rng: np.random.Generator) -> None:
    """A tiny 7-Scenes-style RGB-D sequence: 36x48 pixels, random colour and depth (0.5-3 m),
    identity poses."""
    from PIL import Image

    from pixvox.io.frames import format_matrix

    folder.mkdir(parents=True)
    (folder / "camera-intrinsics.txt").write_text("40 0 23.5\n0 40 17.5\n0 0 1\n")
    for i in range(frames):
        stem = folder / f"frame-{i:06d}"
        Image.fromarray(rng.integers(0, 256, (36, 48, 3)).astype(np.uint8)).save(f"{stem}.color.png")
        Image.fromarray(rng.integers(500, 3000, (36, 48)).astype(np.uint16)).save(f"{stem}.depth.png")
        (folder / f"frame-{i:06d}.pose.txt").write_text(format_matrix(np.eye(4)))
