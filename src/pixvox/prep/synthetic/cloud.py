"""The labeled point cloud of a synthetic room: every surface sampled uniformly, with its class and the
color the renderer gives it."""

from __future__ import annotations

import math

import numpy as np

from pixvox.io.clouds import LabeledCloud
from pixvox.prep.synthetic.render import _OTHER_AXES, _to_local
from pixvox.prep.synthetic.scene import Scene
from pixvox.prep.synthetic.texture import surface_albedo, surface_shading


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
