"""Rendering of the synthetic scenes: camera intrinsics and path, and an exact ray caster (z-depth,
class and surface per pixel, shaded color) by vectorized ray-box intersection."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from pixvox.prep.synthetic.scene import NEAR, Scene
from pixvox.prep.synthetic.texture import surface_albedo, surface_shading


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
