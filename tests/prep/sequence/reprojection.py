"""Pose check for real RGB-D sequences: frame a's depth, moved into frame b with the poses, against b's depth."""

from __future__ import annotations

import numpy as np


def reprojection_error(a, b) -> tuple[float, float]:
    """Median |depth of frame a's points seen from b - b's depth| (metres) and the overlap fraction
    (infinity when no point of a lands on a measured pixel of b)."""
    K = a.intrinsics
    v, u = np.nonzero(a.depth_mm)
    d = a.depth_mm[v, u] / 1000.0
    X = np.stack([(u - K[0, 2]) * d / K[0, 0], (v - K[1, 2]) * d / K[1, 1], d, np.ones_like(d)])
    Xb = np.linalg.inv(b.cam_to_world) @ a.cam_to_world @ X
    ub = np.round(K[0, 0] * Xb[0] / Xb[2] + K[0, 2]).astype(int)
    vb = np.round(K[1, 1] * Xb[1] / Xb[2] + K[1, 2]).astype(int)
    H, W = b.depth_mm.shape
    ok = (Xb[2] > 0) & (ub >= 0) & (ub < W) & (vb >= 0) & (vb < H)
    db = b.depth_mm[vb[ok], ub[ok]] / 1000.0
    has = db > 0
    if not has.any():
        return float("inf"), float(ok.mean())
    return float(np.median(np.abs(db[has] - Xb[2][ok][has]))), float(ok.mean())
