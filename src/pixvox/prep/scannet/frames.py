"""ScanNet ``.sens`` → exported frames: color registered to the depth camera, depth in millimetres,
camera-to-world poses (frames with lost tracking skipped with the reason).

Color is registered to the depth camera: with identical color/depth extrinsics (ScanNet's case) by the
affine map between the two pinhole intrinsics, otherwise by reprojecting each depth pixel into the
color camera.
"""

from __future__ import annotations

import collections
import logging
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from pixvox.io.frames import FrameSequence, FrameWriter, InvalidPoseError, check_pose, is_complete_scene
from pixvox.prep.scannet.sens import SensReader

log = logging.getLogger("pixvox.prep.scannet")

#: Decoded frames waiting for the writer thread during a .sens export (bounds memory).
MAX_IN_FLIGHT = 2


def register_color_affine(
    color: np.ndarray, scale: int, K_color: np.ndarray, K_depth: np.ndarray, size_hw: tuple[int, int]
) -> np.ndarray:
    """Resample color into the depth camera's pixel grid for co-located cameras (same centre and axes).

    Depth pixel ``(u, v)`` sees the color pixel ``u_c = fx_c / fx_d (u - cx_d) + cx_c`` (same for v);
    ``color`` may be a ``scale``-times smaller JPEG draft (pixel ``u_s`` is full-size ``s u_s + (s-1)/2``).
    Bilinear (PIL's resize of the matching box: antialiased when shrinking); returns uint8 ``[H_d, W_d, 3]``.
    """
    ax = K_color[0, 0] / K_depth[0, 0]
    ay = K_color[1, 1] / K_depth[1, 1]
    h, w = size_hw
    # In continuous coordinates (pixel u spans [u, u + 1), centre u + 0.5) the map is
    # x_in = (ax / s) x_out + c: the output image is the input box [x0, x1] x [y0, y1] resized.
    x0 = (-ax * (0.5 + K_depth[0, 2]) + K_color[0, 2] - (scale - 1) / 2) / scale + 0.5
    y0 = (-ay * (0.5 + K_depth[1, 2]) + K_color[1, 2] - (scale - 1) / 2) / scale + 0.5
    x1, y1 = x0 + ax / scale * w, y0 + ay / scale * h
    # PIL needs the box inside the image: pad by replicating the border where it overhangs.
    H_in, W_in = color.shape[:2]
    pad = int(np.ceil(max(0.0, -x0, -y0, x1 - W_in, y1 - H_in)))
    if pad:
        pad += 1
        color = np.pad(color, ((pad, pad), (pad, pad), (0, 0)), mode="edge")
    box = (x0 + pad, y0 + pad, x1 + pad, y1 + pad)
    out = Image.fromarray(color, "RGB").resize((w, h), Image.Resampling.BILINEAR, box=box)
    return np.asarray(out, dtype=np.uint8)


def register_color_reproject(
    color: np.ndarray,
    scale: int,
    K_color: np.ndarray,
    K_depth: np.ndarray,
    depth_to_color: np.ndarray,
    depth_mm: np.ndarray,
) -> np.ndarray:
    """Resample color into the depth grid through each depth pixel's 3D point (cameras with an offset).

    Pixels without depth use a point 10 m away along their ray. Bilinear, edges clamped.
    """
    from scipy.ndimage import map_coordinates

    H, W = depth_mm.shape
    v, u = np.mgrid[0:H, 0:W].astype(np.float64)
    z = np.where(depth_mm > 0, depth_mm / 1000.0, 10.0)
    X = np.stack([(u - K_depth[0, 2]) * z / K_depth[0, 0], (v - K_depth[1, 2]) * z / K_depth[1, 1], z], -1)
    # einsum, not matmul: a multi-threaded BLAS call on [H, W, 3] thrashes when prep runs in workers
    Xc = np.einsum("hwj,ij->hwi", X, depth_to_color[:3, :3]) + depth_to_color[:3, 3]
    zc = np.maximum(Xc[..., 2], 1e-6)
    uc = (K_color[0, 0] * Xc[..., 0] / zc + K_color[0, 2] - (scale - 1) / 2) / scale
    vc = (K_color[1, 1] * Xc[..., 1] / zc + K_color[1, 2] - (scale - 1) / 2) / scale
    out = np.empty((H, W, 3), np.uint8)
    for c in range(3):
        chan = map_coordinates(color[..., c].astype(np.float32), [vc, uc], order=1, mode="nearest")
        out[..., c] = np.clip(np.round(chan), 0, 255).astype(np.uint8)
    return out


# ------------------------------------------------------------------------------------------------ export


def export_sens(
    sens_path: str | Path,
    out_dir: str | Path,
    *,
    frame_skip: int = 25,
    max_frames: int | None = None,
    jpeg_draft: bool = True,
    overwrite: bool = False,
) -> dict[str, Any]:
    """Export every ``frame_skip``-th frame of a ``.sens`` file as one exported scene folder.

    Frames with a non-finite or non-rigid pose are skipped and listed in ``frames.json``. Raises
    :class:`SensFormatError` on a truncated/corrupt file (the folder then stays incomplete: no
    ``frames.json``). Returns ``frames.json``'s content plus ``"read_frames"`` (frames decoded).
    """
    out = Path(out_dir)
    meta = {"frame_skip": int(frame_skip), "max_frames": max_frames}
    if is_complete_scene(out) and not overwrite:
        prev = FrameSequence(out)
        if prev.meta == meta:
            return {
                "source": prev.source,
                "frames": prev.frame_ids,
                "skipped": prev.skipped,
                "meta": meta,
                "read_frames": 0,
                "reused": True,
            }
    with SensReader(sens_path) as r:
        h = r.header
        K_c, K_d = h.intrinsic_color[:3, :3], h.intrinsic_depth[:3, :3]
        depth_to_color = np.linalg.inv(h.extrinsic_color) @ h.extrinsic_depth
        colocated = np.abs(depth_to_color - np.eye(4)).max() < 1e-6
        draft = (h.depth_width, h.depth_height) if jpeg_draft else None
        w = FrameWriter(out, source=f"scannet:{Path(sens_path).name}", intrinsics=K_d, meta=meta)
        n_read = 0
        stop = None if max_frames is None else max_frames * frame_skip

        def register_and_write(
            index: int, color: np.ndarray, s: int, depth: np.ndarray, pose: np.ndarray
        ) -> None:
            if colocated:
                reg = register_color_affine(color, s, K_c, K_d, depth.shape)
            else:
                reg = register_color_reproject(color, s, K_c, K_d, depth_to_color, depth)
            w.add(index, reg, depth, pose)

        # Two-stage pipeline: this thread reads and decodes, one writer thread registers, encodes and
        # writes (PIL and zlib release the GIL). At most MAX_IN_FLIGHT frames wait: memory stays bounded.
        pending: collections.deque[Future] = collections.deque()
        with ThreadPoolExecutor(max_workers=1) as writer:
            for fr in r.frames(step=frame_skip, stop=stop):
                n_read += 1
                try:
                    pose = check_pose(fr.camera_to_world, f"{r.path} frame {fr.index}")
                except InvalidPoseError as err:
                    w.skip(fr.index, f"invalid pose: {err}")
                    log.warning("%s: skipped frame %d: invalid pose: %s", out, fr.index, err)
                    continue
                depth = r.decode_depth(fr)
                color, s = r.decode_color(fr, draft)
                pending.append(writer.submit(register_and_write, fr.index, color, s, depth, pose))
                while len(pending) >= MAX_IN_FLIGHT:
                    pending.popleft().result()  # re-raises a writer error here
            while pending:
                pending.popleft().result()
        info = w.finish()
    if info["skipped"]:
        log.info(
            "%s: %d frames exported, %d skipped (invalid pose)",
            out.name,
            len(info["frames"]),
            len(info["skipped"]),
        )
    return {**info, "read_frames": n_read, "reused": False}
