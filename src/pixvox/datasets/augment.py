"""3D and 2D augmentations of the pretraining fusions and the segmentation point clouds.

Pretraining keeps 3D voxels and 2D pixels matched. 3D: a random similarity transform (rotation about the up axis, scale, mirror, translation) and an
optional elastic distortion are applied to voxel centres, which are then re-voxelized. The map from
each original voxel to its augmented voxel is kept, so pixels matched to original voxels (in the
fusion's world frame) follow them exactly, whatever the distortion.

2D: resize-crop and horizontal flip change the pixel grid; the intrinsics are updated so that
back-projection of the augmented depth stays consistent. A flip mirrors the camera's x axis: the
caller right-multiplies the camera-to-world pose by ``diag(-1, 1, 1, 1)`` (see :data:`MIRROR_X`).

Segmentation (points, before voxelization): small tilts plus the similarity
(:func:`random_point_transform`), a horizontal crop around a labeled point, and chromatic auto-contrast,
translation and jitter of the voxel colors.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

from pixvox.config.finetune import ColorAugmentConfig, SegAugment3DConfig
from pixvox.io.clouds import IGNORE_INDEX

AXES = {"x": 0, "y": 1, "z": 2}
#: Right-multiplying a camera-to-world pose by this accounts for a horizontally flipped image.
MIRROR_X = torch.diag(torch.tensor([-1.0, 1.0, 1.0, 1.0], dtype=torch.float64))


def random_similarity(
    rng: np.random.Generator,
    up_axis: str,
    rotate: bool,
    scale: tuple[float, float],
    flip: bool,
    translate: float,
) -> np.ndarray:
    """A random 4×4 float64 world transform: rotation about ``up_axis``, uniform scale, mirror, shift (metres)."""
    T = np.eye(4)
    if rotate:
        a = rng.uniform(0, 2 * math.pi)
        c, s = math.cos(a), math.sin(a)
        i, j = [k for k in range(3) if k != AXES[up_axis]]
        R = np.eye(3)
        R[i, i], R[i, j], R[j, i], R[j, j] = c, -s, s, c
        T[:3, :3] = R
    T[:3, :3] *= rng.uniform(*scale)
    if flip and rng.random() < 0.5:
        horizontal = [k for k in range(3) if k != AXES[up_axis]][0]
        T[horizontal, :] *= -1
    T[:3, 3] = rng.uniform(-translate, translate, size=3)
    return T


def elastic_distortion(
    xyz: np.ndarray, rng: np.random.Generator, granularity: float, magnitude: float
) -> np.ndarray:
    """Smooth random displacement of points ``[N, 3]`` (metres): noise on a grid of spacing
    ``granularity``, blurred, trilinearly interpolated and scaled by ``magnitude``."""
    from scipy.interpolate import RegularGridInterpolator
    from scipy.ndimage import gaussian_filter

    lo = xyz.min(0) - granularity * 2
    dims = ((xyz.max(0) - lo) // granularity).astype(int) + 5
    noise = rng.standard_normal((*dims, 3))
    for k in range(3):
        noise[..., k] = gaussian_filter(noise[..., k], sigma=1.0, mode="nearest")
    axes = [lo[k] + granularity * np.arange(dims[k]) for k in range(3)]
    interp = RegularGridInterpolator(axes, noise, bounds_error=False, fill_value=0.0)
    return xyz + interp(xyz) * magnitude


def _axis_rotation(axis: int, angle: float) -> np.ndarray:
    c, s = math.cos(angle), math.sin(angle)
    i, j = [k for k in range(3) if k != axis]
    R = np.eye(3)
    R[i, i], R[i, j], R[j, i], R[j, j] = c, -s, s, c
    return R


def random_point_transform(rng: np.random.Generator, cfg: SegAugment3DConfig) -> np.ndarray:
    """4×4 float64: small tilts about the horizontal axes, then rotation about the up axis, scale,
    mirror, translation (metres)."""
    T = random_similarity(rng, cfg.up_axis, cfg.rotate_gravity, cfg.scale, False, cfg.translate)
    tilt = np.eye(4)
    if cfg.tilt > 0:
        for axis in (k for k in range(3) if k != AXES[cfg.up_axis]):
            tilt[:3, :3] = _axis_rotation(axis, rng.uniform(-cfg.tilt, cfg.tilt)) @ tilt[:3, :3]
    T = T @ tilt
    if cfg.flip:
        for axis in (k for k in range(3) if k != AXES[cfg.up_axis]):
            if rng.random() < 0.5:
                T[axis, :] *= -1
    return T


def horizontal_crop(
    xyz: np.ndarray, labels: np.ndarray, size: float, up_axis: str, rng: np.random.Generator
) -> np.ndarray:
    """Indices of the points in a horizontal ``size``×``size`` m square centred on a random labeled
    point (any point when none is labeled); the square spans the full height."""
    labeled = np.flatnonzero(labels != IGNORE_INDEX)
    centre = xyz[rng.choice(labeled) if labeled.size else rng.integers(xyz.shape[0])]
    h = [k for k in range(3) if k != AXES[up_axis]]
    inside = (np.abs(xyz[:, h] - centre[h]) <= size / 2).all(1)
    return np.flatnonzero(inside)


def chromatic_augment(rgb: np.ndarray, rng: np.random.Generator, cfg: ColorAugmentConfig) -> np.ndarray:
    """Auto-contrast (blended), global translation and per-voxel jitter of ``[V, 3]`` colors on the
    0-255 scale (float64, clipped to [0, 255])."""
    rgb = rgb.astype(np.float64, copy=True)
    if rgb.shape[0] and rng.random() < cfg.auto_contrast:
        lo, hi = rgb.min(0, keepdims=True), rgb.max(0, keepdims=True)
        stretched = (rgb - lo) * (255.0 / np.maximum(hi - lo, 1e-6))
        blend = rng.random()
        rgb = (1 - blend) * rgb + blend * stretched
    if cfg.translation > 0 and rng.random() < 0.95:
        rgb = rgb + (rng.random((1, 3)) - 0.5) * 2 * 255 * cfg.translation
    if cfg.jitter_std > 0 and rng.random() < 0.95:
        rgb = rgb + rng.standard_normal(rgb.shape) * cfg.jitter_std * 255
    return np.clip(rgb, 0, 255)


def resize_crop_flip(
    image: torch.Tensor,
    depth: torch.Tensor,
    K: torch.Tensor,
    out_hw: tuple[int, int],
    rng: np.random.Generator | None,
    scale: tuple[float, float],
    hflip: bool,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, bool]:
    """Random crop (area fraction in ``scale``, output aspect) resized to ``out_hw``, random flip.

    Args:
        image: ``[3, H, W]`` float RGB in [0, 1]; depth: ``[H, W]`` metres; K: ``[3, 3]`` pixels.
        rng: None for a deterministic centre crop of the full image without flip (evaluation).
    Returns the new image ``[3, h, w]``, depth ``[h, w]`` (nearest, so depths stay measured values),
    intrinsics of the new pixel grid (pixel centres at integers) and whether the image was flipped
    (then the pose must be mirrored with :data:`MIRROR_X`).
    """
    H, W = depth.shape
    h, w = out_hw
    aspect = w / h
    frac = 1.0 if rng is None else rng.uniform(*scale)
    ch = min(H, int(round(math.sqrt(frac * H * W / aspect))))
    cw = min(W, int(round(ch * aspect)))
    ch = min(H, int(round(cw / aspect)))
    if rng is None:
        y0, x0 = (H - ch) // 2, (W - cw) // 2
    else:
        y0, x0 = int(rng.integers(0, H - ch + 1)), int(rng.integers(0, W - cw + 1))
    img = image[:, y0 : y0 + ch, x0 : x0 + cw]
    dep = depth[y0 : y0 + ch, x0 : x0 + cw]
    sx, sy = w / cw, h / ch
    img = F.interpolate(img[None], size=(h, w), mode="bilinear", align_corners=False, antialias=True)[0]
    # Nearest sampling keeps depths as measured (no mixing across edges); output pixel i reads source
    # pixel floor((i + 0.5) / s), within half a source pixel of where the new intrinsics put its centre.
    iy = ((torch.arange(h) + 0.5) / sy).floor().long().clamp_max(ch - 1)
    ix = ((torch.arange(w) + 0.5) / sx).floor().long().clamp_max(cw - 1)
    dep = dep[iy][:, ix]
    K2 = K.clone().double()
    K2[0, 0] *= sx
    K2[1, 1] *= sy
    K2[0, 2] = (K[0, 2] - x0 + 0.5) * sx - 0.5
    K2[1, 2] = (K[1, 2] - y0 + 0.5) * sy - 0.5
    flipped = bool(rng is not None and hflip and rng.random() < 0.5)
    if flipped:
        # u' = w - 1 - u: with cx' = w - 1 - cx the camera x coordinate changes sign, which the
        # mirrored pose undoes, so fx stays positive.
        img = img.flip(-1)
        dep = dep.flip(-1)
        K2[0, 2] = (w - 1) - K2[0, 2]
    return img.contiguous(), dep.contiguous(), K2.to(K.dtype), flipped


def color_jitter(image: torch.Tensor, rng: np.random.Generator, strength: float) -> torch.Tensor:
    """Random brightness, contrast and saturation of ``[3, H, W]`` RGB in [0, 1]."""
    if strength <= 0:
        return image
    b, c, s = (1 + rng.uniform(-strength, strength, size=3)).tolist()
    img = image * b
    mean = img.mean()
    img = (img - mean) * c + mean
    gray = (0.299 * img[0] + 0.587 * img[1] + 0.114 * img[2])[None]
    img = (img - gray) * s + gray
    return img.clamp(0, 1)
