"""View pairs of a fusion dataset: different fusions of one scene that overlap (PointContrast's input).

Two fusions of one scene share the scene's world frame, so their overlap is counted on the stored
voxel coordinates themselves, through :class:`pixvox.ops.VoxelHash`:

    shared(a, b)  = number of voxels stored in both a and b
    overlap(a, b) = shared / min(|a|, |b|)    (the fraction of the smaller fusion seen by the other)

:func:`make_fusions <pixvox.prep.fusion.make_fusions>` computes the pairs once, at preparation time,
and stores those with ``overlap >= min_overlap`` (default 0.3, the threshold of Xie et al. 2020) in
``index.json`` under ``view_pairs`` (layout: :func:`view_pairs_json`; reader:
:meth:`pixvox.io.fusions.FusionIndex.view_pairs`).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from pixvox.ops import VoxelHash

DEFAULT_MIN_OVERLAP = 0.3
DEFINITION = "shared voxels / voxels of the smaller fusion (world frame, stored voxel coordinates)"


def _with_batch(coords: np.ndarray) -> torch.Tensor:
    c = torch.from_numpy(np.ascontiguousarray(coords, dtype=np.int32))
    return torch.cat([torch.zeros((c.shape[0], 1), dtype=torch.int32), c], 1)


def overlapping_pairs(coords: Sequence[np.ndarray], min_overlap: float) -> list[tuple[int, int, int, float]]:
    """``(i, j, shared, overlap)`` for every ``i < j`` with ``overlap >= min_overlap``.

    ``coords``: int32 ``[V_k, 3]`` stored voxels of each fusion of ONE scene (unique rows each).
    Fusions whose bounding boxes do not meet share nothing and are not looked up.
    """
    if not 0 < min_overlap <= 1:
        raise ValueError(f"min_overlap must be in (0, 1], got {min_overlap}")
    lo = [c.min(0) if len(c) else None for c in coords]
    hi = [c.max(0) if len(c) else None for c in coords]
    batched = [_with_batch(c) for c in coords]
    out = []
    for i in range(len(coords)):
        if not len(coords[i]):
            continue
        table = VoxelHash(batched[i])
        for j in range(i + 1, len(coords)):
            if not len(coords[j]) or (lo[j] > hi[i]).any() or (hi[j] < lo[i]).any():
                continue
            shared = int((table.lookup(batched[j]) >= 0).sum())
            overlap = shared / min(len(coords[i]), len(coords[j]))
            if overlap >= min_overlap:
                out.append((i, j, shared, overlap))
    return out


def view_pairs_json(
    scenes: dict[str, list[tuple[str, np.ndarray]]], min_overlap: float = DEFAULT_MIN_OVERLAP
) -> dict:
    """The ``view_pairs`` entry of ``index.json`` from ``{scene: [(sample name, coords), ...]}``:
    ``{"min_overlap", "definition", "scenes": {scene: [{"a", "b", "shared", "overlap"}, ...]}}``."""
    table: dict[str, list[dict]] = {}
    for scene, samples in sorted(scenes.items()):
        samples = sorted(samples, key=lambda s: s[0])
        pairs = overlapping_pairs([c for _, c in samples], min_overlap)
        table[scene] = [
            {"a": samples[i][0], "b": samples[j][0], "shared": shared, "overlap": overlap}
            for i, j, shared, overlap in pairs
        ]
    return {"min_overlap": float(min_overlap), "definition": DEFINITION, "scenes": table}
