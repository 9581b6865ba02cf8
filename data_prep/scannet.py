"""ScanNet v2: ``.sens`` RGB-D streams → exported frames; labeled meshes → labeled clouds; splits.

Subcommands::

    # every 25th frame of each scan's .sens (streamed: skipped frames are never decoded)
    python data_prep/scannet.py frames --scans /data/scannet/scans --out data/scannet/frames --workers 4
    # *_vh_clean_2.ply + *_vh_clean_2.labels.ply → xyz, rgb, ScanNet-20 labels
    python data_prep/scannet.py clouds --scans /data/scannet/scans --out data/scannet/clouds \\
        [--labels-tsv scannetv2-labels.combined.tsv]
    # the mmdetection3d-style arrays (<scene>_vert_all.npy, <scene>_sem_label_all.npy)
    python data_prep/scannet.py npy-clouds --src ../shared/data/scannet_scene0000 --out data/scannet/clouds
    # official lists (given by you) + data-efficient subsets from a seed
    python data_prep/scannet.py splits --split-dir lists/ --out data/scannet/splits --seed 0 \\
        [--clouds data/scannet/clouds]

The ``.sens`` layout (little-endian, as written by ScanNet's SensReader) is documented in
docs/data.md and in :class:`SensReader`. Color is registered to the depth camera: with identical
color/depth extrinsics (ScanNet's case) by the affine map between the two pinhole intrinsics,
otherwise by reprojecting each depth pixel into the color camera.
"""

from __future__ import annotations

import argparse
import collections
import csv
import hashlib
import io
import json
import logging
import struct
import sys
import zlib
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

try:
    import pixvox  # noqa: F401
except ImportError:  # run from a source checkout without installing: use ./src
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from PIL import Image  # noqa: E402

from pixvox.io.atomic import atomic_write_json, atomic_write_text  # noqa: E402
from pixvox.io.clouds import CloudIndex, LabeledCloud  # noqa: E402
from pixvox.io.depth import scale_to_mm  # noqa: E402
from pixvox.io.frames import FrameSequence, FrameWriter, InvalidPoseError, check_pose, is_complete_scene  # noqa: E402
from pixvox.io.images import ImageReadError, decode_color, decode_color_draft  # noqa: E402
from pixvox.io.jobs import run_jobs, setup_logging  # noqa: E402

log = logging.getLogger("pixvox.data_prep.scannet")

#: NYU40 ids of the 20 ScanNet benchmark classes, in class-id order 0..19.
SCANNET20_NYU40_IDS = (1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 14, 16, 24, 28, 33, 34, 36, 39)
SCANNET20_CLASS_NAMES = (
    "wall",
    "floor",
    "cabinet",
    "bed",
    "chair",
    "sofa",
    "table",
    "door",
    "window",
    "bookshelf",
    "picture",
    "counter",
    "desk",
    "curtain",
    "refrigerator",
    "shower curtain",
    "toilet",
    "sink",
    "bathtub",
    "otherfurniture",
)
SCENE_FRACTIONS = (0.01, 0.05, 0.10, 0.20)
POINTS_PER_SCENE = (20, 50, 100, 200)

#: Decoded frames waiting for the writer thread during a .sens export (bounds memory).
MAX_IN_FLIGHT = 2

COLOR_COMPRESSION = {-1: "unknown", 0: "raw", 1: "png", 2: "jpeg"}
DEPTH_COMPRESSION = {-1: "unknown", 0: "raw_ushort", 1: "zlib_ushort", 2: "occi_ushort"}


class SensFormatError(ValueError):
    """A ``.sens`` file is truncated or not in the documented layout (the message names file and frame)."""


class ScanNetFormatError(ValueError):
    """A ScanNet mesh/label/list file is missing data (the message names the file and the fix)."""


def nyu40_to_scannet20() -> np.ndarray:
    """Lookup table ``[256]`` int32: NYU40 id → ScanNet-20 class id, -1 for every other id."""
    table = np.full(256, -1, dtype=np.int32)
    for cls, nyu in enumerate(SCANNET20_NYU40_IDS):
        table[nyu] = cls
    return table


def map_nyu40(nyu40: np.ndarray, source: str) -> np.ndarray:
    """NYU40 ids (0 = unannotated) → int32 ScanNet-20 labels (-1 = ignored)."""
    nyu40 = np.asarray(nyu40)
    if nyu40.size and (nyu40.min() < 0 or nyu40.max() > 255):
        raise ScanNetFormatError(f"{source}: label ids span [{nyu40.min()}, {nyu40.max()}], not NYU40 ids")
    return nyu40_to_scannet20()[nyu40.astype(np.int64)]


# ------------------------------------------------------------------------------------------------- .sens


@dataclass
class SensHeader:
    """Header of a ``.sens`` file (4x4 matrices as float64; intrinsics in pixels of each stream)."""

    version: int
    sensor_name: str
    intrinsic_color: np.ndarray
    extrinsic_color: np.ndarray
    intrinsic_depth: np.ndarray
    extrinsic_depth: np.ndarray
    color_compression: int
    depth_compression: int
    color_width: int
    color_height: int
    depth_width: int
    depth_height: int
    depth_shift: float
    num_frames: int
    frames_offset: int


@dataclass
class SensFrame:
    """One frame record: pose (float64 4x4 camera-to-world, may be non-finite), timestamps, payloads."""

    index: int
    camera_to_world: np.ndarray
    timestamp_color: int
    timestamp_depth: int
    color_bytes: bytes | None
    depth_bytes: bytes | None


FRAME_HEADER = struct.Struct("<16f4Q")  # pose, timestamp_color, timestamp_depth, color size, depth size


class SensReader:
    """Stream a ScanNet ``.sens`` file frame by frame; skipped frames are seeked over, never decoded.

    Layout (little-endian)::

        uint32 version (= 4); uint64 n; n bytes sensor name
        float32[16] intrinsic_color, extrinsic_color, intrinsic_depth, extrinsic_depth (row-major 4x4)
        int32 color_compression (-1 unknown, 0 raw, 1 png, 2 jpeg)
        int32 depth_compression (-1 unknown, 0 raw_ushort, 1 zlib_ushort, 2 occi_ushort)
        uint32 color_width, color_height, depth_width, depth_height; float32 depth_shift
        uint64 num_frames
        per frame: float32[16] camera_to_world; uint64 timestamp_color, timestamp_depth;
                   uint64 color_size_bytes, depth_size_bytes; color bytes; depth bytes

    Memory: at most one frame's payload is held at a time.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        try:
            self._f: BinaryIO = open(self.path, "rb")
        except FileNotFoundError as err:
            raise SensFormatError(f"{self.path}: file not found") from err
        self.file_size = self.path.stat().st_size
        try:
            self.header = self._read_header()
        except BaseException:
            self._f.close()
            raise

    def _read(self, n: int, what: str) -> bytes:
        b = self._f.read(n)
        if len(b) != n:
            raise SensFormatError(
                f"{self.path}: truncated while reading {what} ({len(b)} of {n} bytes at offset "
                f"{self._f.tell() - len(b)} of {self.file_size}); the download is incomplete, fetch it again"
            )
        return b

    def _read_header(self) -> SensHeader:
        (version,) = struct.unpack("<I", self._read(4, "version"))
        if version != 4:
            raise SensFormatError(
                f"{self.path}: .sens version {version}, expected 4 (not a ScanNet .sens file?)"
            )
        (n,) = struct.unpack("<Q", self._read(8, "sensor name length"))
        if n > 4096:
            raise SensFormatError(f"{self.path}: sensor name length {n} is implausible; corrupt header")
        name = self._read(n, "sensor name").decode("utf-8", errors="replace")
        mats = (
            np.frombuffer(self._read(4 * 64, "calibration"), dtype="<f4").astype(np.float64).reshape(4, 4, 4)
        )
        cc, dc = struct.unpack("<ii", self._read(8, "compression types"))
        cw, ch, dw, dh = struct.unpack("<4I", self._read(16, "image sizes"))
        (shift,) = struct.unpack("<f", self._read(4, "depth shift"))
        (num,) = struct.unpack("<Q", self._read(8, "frame count"))
        if cc not in COLOR_COMPRESSION or dc not in DEPTH_COMPRESSION:
            raise SensFormatError(f"{self.path}: unknown compression types color={cc} depth={dc}")
        if min(cw, ch, dw, dh) == 0 or not shift > 0:
            raise SensFormatError(
                f"{self.path}: invalid image sizes {cw}x{ch}/{dw}x{dh} or depth shift {shift}"
            )
        return SensHeader(
            version,
            name,
            mats[0],
            mats[1],
            mats[2],
            mats[3],
            cc,
            dc,
            cw,
            ch,
            dw,
            dh,
            float(shift),
            int(num),
            self._f.tell(),
        )

    def frames(self, step: int = 1, start: int = 0, stop: int | None = None) -> Iterator[SensFrame]:
        """Yield frames ``start, start + step, ...`` (< ``stop``); other frames' payloads are seeked over."""
        if step < 1:
            raise ValueError(f"step must be >= 1, got {step}")
        self._f.seek(self.header.frames_offset)
        end = self.header.num_frames if stop is None else min(stop, self.header.num_frames)
        for i in range(end):
            pos = self._f.tell()
            head = self._read(FRAME_HEADER.size, f"frame {i} header")
            vals = FRAME_HEADER.unpack(head)
            color_size, depth_size = vals[18], vals[19]
            payload_end = pos + FRAME_HEADER.size + color_size + depth_size
            if payload_end > self.file_size:
                raise SensFormatError(
                    f"{self.path}: truncated in frame {i} of {self.header.num_frames} (its data ends at byte "
                    f"{payload_end}, the file has {self.file_size}); the download is incomplete, "
                    "fetch it again"
                )
            if i < start or (i - start) % step:
                self._f.seek(color_size + depth_size, io.SEEK_CUR)
                continue
            color = self._read(color_size, f"frame {i} color")
            depth = self._read(depth_size, f"frame {i} depth")
            pose = np.asarray(vals[:16], dtype=np.float64).reshape(4, 4)
            yield SensFrame(i, pose, vals[16], vals[17], color, depth)

    def decode_depth(self, frame: SensFrame) -> np.ndarray:
        """Frame depth as uint16 millimetres ``[depth_height, depth_width]`` (raw / depth_shift, in mm)."""
        h = self.header
        where = f"{self.path} frame {frame.index}"
        if h.depth_compression == 1:
            try:
                raw = zlib.decompress(frame.depth_bytes)
            except zlib.error as err:
                raise SensFormatError(f"{where}: corrupt zlib depth ({err})") from err
        elif h.depth_compression == 0:
            raw = frame.depth_bytes
        else:
            raise SensFormatError(
                f"{where}: depth compression {DEPTH_COMPRESSION[h.depth_compression]} is not supported "
                "(ScanNet v2 uses zlib_ushort)"
            )
        if len(raw) != 2 * h.depth_width * h.depth_height:
            raise SensFormatError(
                f"{where}: depth has {len(raw)} bytes, expected {2 * h.depth_width * h.depth_height} "
                f"for {h.depth_width}x{h.depth_height} uint16"
            )
        depth = np.frombuffer(raw, dtype="<u2").reshape(h.depth_height, h.depth_width).astype(np.uint16)
        return scale_to_mm(depth, h.depth_shift)

    def decode_color(
        self, frame: SensFrame, min_size: tuple[int, int] | None = None
    ) -> tuple[np.ndarray, int]:
        """Frame color as uint8 RGB; with ``min_size`` (W, H) a JPEG is decoded at the smallest DCT scale that
        is still at least that big. Returns the image and its integer downscale (see
        :func:`pixvox.io.images.decode_color_draft`)."""
        h = self.header
        where = f"{self.path} frame {frame.index}"
        try:
            if h.color_compression == 2 and min_size is not None:
                return decode_color_draft(frame.color_bytes, where, min_size)
            if h.color_compression in (1, 2):
                return decode_color(frame.color_bytes, where), 1
        except ImageReadError as err:
            raise SensFormatError(str(err)) from err
        if h.color_compression == 0:
            if len(frame.color_bytes) != 3 * h.color_width * h.color_height:
                raise SensFormatError(f"{where}: raw color has {len(frame.color_bytes)} bytes, expected RGB8")
            return np.frombuffer(frame.color_bytes, np.uint8).reshape(h.color_height, h.color_width, 3), 1
        raise SensFormatError(f"{where}: unknown color compression; cannot decode")

    def close(self) -> None:
        self._f.close()

    def __enter__(self) -> SensReader:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


# ------------------------------------------------------------------------------------------ registration


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


# ------------------------------------------------------------------------------------------------ clouds


def read_ply_vertices(path: str | Path, properties: tuple[str, ...]) -> dict[str, np.ndarray]:
    """Vertex properties of a PLY file (ASCII or binary) as numpy arrays; clear error when one is missing."""
    from plyfile import PlyData, PlyElementParseError, PlyHeaderParseError

    path = Path(path)
    try:
        ply = PlyData.read(str(path))
    except FileNotFoundError as err:
        raise ScanNetFormatError(f"{path}: file not found") from err
    except (PlyHeaderParseError, PlyElementParseError, ValueError, EOFError, struct.error) as err:
        raise ScanNetFormatError(f"{path}: unreadable PLY ({err}); re-download it") from err
    if "vertex" not in ply:
        raise ScanNetFormatError(f"{path}: no 'vertex' element")
    v = ply["vertex"]
    have = {p.name for p in v.properties}
    missing = [p for p in properties if p not in have]
    if missing:
        raise ScanNetFormatError(f"{path}: vertex properties {missing} missing (has {sorted(have)})")
    return {p: np.asarray(v[p]) for p in properties}


def load_label_tsv(path: str | Path) -> tuple[dict[str, int], dict[int, str]]:
    """``scannetv2-labels.combined.tsv`` → (raw_category → NYU40 id, NYU40 id → nyu40class name)."""
    path = Path(path)
    raw_to_nyu: dict[str, int] = {}
    nyu_names: dict[int, str] = {}
    with open(path, newline="") as f:
        reader = csv.DictReader(f, delimiter="\t")
        need = {"raw_category", "nyu40id", "nyu40class"}
        if reader.fieldnames is None or not need <= set(reader.fieldnames):
            raise ScanNetFormatError(f"{path}: needs columns {sorted(need)}, has {reader.fieldnames}")
        for row in reader:
            try:
                nyu = int(row["nyu40id"])
            except (TypeError, ValueError):
                continue
            raw_to_nyu[row["raw_category"]] = nyu
            nyu_names.setdefault(nyu, row["nyu40class"])
    missing = [i for i in SCANNET20_NYU40_IDS if i not in nyu_names]
    if missing:
        raise ScanNetFormatError(f"{path}: NYU40 ids {missing} of the ScanNet-20 classes do not occur in it")
    return raw_to_nyu, nyu_names


def labels_from_aggregation(
    scene_dir: Path, scene: str, raw_to_nyu: dict[str, int], num_vertices: int
) -> np.ndarray:
    """Per-vertex NYU40 ids from ``<scene>.aggregation.json`` + ``<scene>_vh_clean_2.0.010000.segs.json``."""
    agg_path = scene_dir / f"{scene}.aggregation.json"
    seg_path = scene_dir / f"{scene}_vh_clean_2.0.010000.segs.json"
    try:
        agg = json.loads(agg_path.read_text())
        seg_indices = np.asarray(json.loads(seg_path.read_text())["segIndices"], dtype=np.int64)
    except (FileNotFoundError, KeyError, json.JSONDecodeError) as err:
        raise ScanNetFormatError(f"{scene_dir}: cannot read aggregation/segments ({err})") from err
    if seg_indices.shape[0] != num_vertices:
        raise ScanNetFormatError(
            f"{seg_path}: {seg_indices.shape[0]} segment ids for {num_vertices} vertices"
        )
    nyu = np.zeros(num_vertices, dtype=np.int64)
    for group in agg.get("segGroups", []):
        label = raw_to_nyu.get(group.get("label", ""), 0)
        nyu[np.isin(seg_indices, np.asarray(group.get("segments", []), dtype=np.int64))] = label
    return nyu


def scan_to_cloud(
    scene_dir: str | Path, raw_to_nyu: dict[str, int] | None = None, label_source: str = "ply"
) -> LabeledCloud:
    """One scan folder (``<scene>_vh_clean_2.ply`` + labels) → labeled cloud with ScanNet-20 labels."""
    scene_dir = Path(scene_dir)
    scene = scene_dir.name
    mesh = read_ply_vertices(scene_dir / f"{scene}_vh_clean_2.ply", ("x", "y", "z", "red", "green", "blue"))
    n = mesh["x"].shape[0]
    if label_source == "ply":
        lab_path = scene_dir / f"{scene}_vh_clean_2.labels.ply"
        nyu = read_ply_vertices(lab_path, ("label",))["label"]
        if nyu.shape[0] != n:
            raise ScanNetFormatError(f"{lab_path}: {nyu.shape[0]} labeled vertices, the mesh has {n}")
    elif label_source == "aggregation":
        if raw_to_nyu is None:
            raise ValueError("label_source='aggregation' needs the labels tsv (raw category → NYU40)")
        nyu = labels_from_aggregation(scene_dir, scene, raw_to_nyu, n)
    else:
        raise ValueError(f"label_source must be 'ply' or 'aggregation', got {label_source!r}")
    xyz = np.stack([mesh["x"], mesh["y"], mesh["z"]], 1).astype(np.float32)
    rgb = np.stack([mesh["red"], mesh["green"], mesh["blue"]], 1).astype(np.uint8)
    return LabeledCloud(xyz=xyz, rgb=rgb, labels=map_nyu40(nyu, str(scene_dir)))


def npy_to_cloud(vert_path: str | Path, label_path: str | Path) -> LabeledCloud:
    """mmdetection3d-style arrays: ``*_vert_all.npy`` (N, 6) xyz rgb + ``*_sem_label_all.npy`` NYU40 ids."""
    vert = np.load(vert_path, allow_pickle=False)
    sem = np.load(label_path, allow_pickle=False)
    if vert.ndim != 2 or vert.shape[1] < 6:
        raise ScanNetFormatError(f"{vert_path}: expected (N, 6) x y z r g b, got {vert.shape}")
    if sem.shape != (vert.shape[0],):
        raise ScanNetFormatError(f"{label_path}: expected ({vert.shape[0]},) labels, got {sem.shape}")
    if not np.isfinite(vert[:, :3]).all():
        raise ScanNetFormatError(f"{vert_path}: non-finite coordinates")
    rgb = np.clip(np.round(vert[:, 3:6]), 0, 255).astype(np.uint8)
    return LabeledCloud(vert[:, :3].astype(np.float32), rgb, map_nyu40(sem, str(label_path)))


# ------------------------------------------------------------------------------------------------ splits


def read_scene_list(path: str | Path) -> list[str]:
    """One scene name per line (blank lines ignored)."""
    path = Path(path)
    if not path.is_file():
        raise ScanNetFormatError(f"{path}: scene list not found (download the official ScanNet split files)")
    return [ln.strip() for ln in path.read_text().splitlines() if ln.strip()]


def _scene_rng(seed: int, scene: str) -> np.random.Generator:
    # Per-scene streams keyed by the name: adding or removing other scenes does not change this one.
    digest = hashlib.sha256(f"{seed}:{scene}".encode()).digest()
    return np.random.default_rng(int.from_bytes(digest[:8], "little"))


def scene_fraction_subsets(train: list[str], seed: int, fractions=SCENE_FRACTIONS) -> dict[float, list[str]]:
    """Nested random subsets of the training scenes: ``max(1, round(f * N))`` scenes each, sorted.

    One seeded permutation of the sorted list; each subset is a prefix, so 1% ⊂ 5% ⊂ 10% ⊂ 20%.
    """
    scenes = sorted(set(train))
    order = np.random.default_rng(seed).permutation(len(scenes))
    return {f: sorted(scenes[i] for i in order[: max(1, round(f * len(scenes)))]) for f in fractions}


def limited_points(
    labels: np.ndarray, scene: str, seed: int, max_points: int = max(POINTS_PER_SCENE)
) -> np.ndarray:
    """Indices of up to ``max_points`` labeled points (label >= 0) of one scene, in a seeded random order.

    The first k indices are the k-point subset, so the 20 ⊂ 50 ⊂ 100 ⊂ 200 subsets are nested.
    """
    candidates = np.flatnonzero(labels >= 0)
    return candidates[_scene_rng(seed, scene).permutation(candidates.size)[:max_points]]


def write_splits(
    split_dir: str | Path, out: str | Path, seed: int, clouds: str | Path | None = None
) -> dict[str, Any]:
    """Copy the official lists and write the data-efficient subsets (see docs/data.md)."""
    split_dir, out = Path(split_dir), Path(out)
    lists = {name: read_scene_list(split_dir / f"scannetv2_{name}.txt") for name in ("train", "val")}
    test = split_dir / "scannetv2_test.txt"
    if test.is_file():
        lists["test"] = read_scene_list(test)
    for name, scenes in lists.items():
        atomic_write_text(out / f"scannetv2_{name}.txt", "".join(s + "\n" for s in scenes))
    subsets = scene_fraction_subsets(lists["train"], seed)
    for f, scenes in subsets.items():
        atomic_write_text(out / f"train_{round(f * 100)}pct.txt", "".join(s + "\n" for s in scenes))
    summary: dict[str, Any] = {name: len(s) for name, s in lists.items()}
    summary["fractions"] = {f"{round(f * 100)}pct": len(s) for f, s in subsets.items()}
    if clouds is not None:
        index = CloudIndex.load(clouds)
        have = set(index.names())
        points: dict[str, list[int]] = {}
        missing = sorted(set(lists["train"]) - have)
        for scene in sorted(set(lists["train"]) & have):
            points[scene] = limited_points(index.load_scene(scene).labels, scene, seed).tolist()
        atomic_write_json(
            out / "limited_points.json",
            {
                "format": "pixvox.limited_points",
                "version": 1,
                "seed": seed,
                "counts": list(POINTS_PER_SCENE),
                "note": "the k-point subset of a scene is the first k indices of its list",
                "scenes": points,
            },
        )
        summary["limited_points_scenes"] = len(points)
        summary["limited_points_missing"] = missing
        if missing:
            log.warning("%d training scenes have no prepared cloud; no limited points for them", len(missing))
    atomic_write_json(out / "splits.json", {"seed": seed, **summary})
    return summary


# ----------------------------------------------------------------------------------------------- drivers


def _frames_job(job: dict[str, Any]) -> dict[str, Any]:
    info = export_sens(
        job["sens"],
        job["out"],
        frame_skip=job["frame_skip"],
        max_frames=job["max_frames"],
        overwrite=job["overwrite"],
    )
    return {"frames": len(info["frames"]), "skipped": len(info["skipped"]), "reused": info["reused"]}


def _cloud_job(job: dict[str, Any]) -> tuple[str, LabeledCloud]:
    raw_to_nyu = load_label_tsv(job["tsv"])[0] if job["tsv"] else None
    return job["name"], scan_to_cloud(job["dir"], raw_to_nyu, job["label_source"])


def _scan_dirs(scans: Path, only: list[str] | None) -> list[Path]:
    if not scans.is_dir():
        raise ScanNetFormatError(
            f"{scans}: folder not found (expected ScanNet's scans/ with one folder per scan)"
        )
    dirs = sorted(p for p in scans.iterdir() if p.is_dir() and (only is None or p.name in only))
    return dirs


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    f = sub.add_parser("frames", help="export .sens streams to exported frames")
    f.add_argument("--scans", type=Path, required=True, help="folder of scan folders (<scene>/<scene>.sens)")
    f.add_argument("--out", type=Path, required=True)
    f.add_argument("--frame-skip", type=int, default=25)
    f.add_argument("--max-frames", type=int, default=None)
    c = sub.add_parser("clouds", help="labeled meshes to labeled clouds")
    c.add_argument("--scans", type=Path, required=True)
    c.add_argument("--out", type=Path, required=True)
    c.add_argument("--labels-tsv", type=Path, default=None, help="scannetv2-labels.combined.tsv")
    c.add_argument(
        "--label-source",
        choices=["ply", "aggregation"],
        default="ply",
        help="NYU40 ids from *_vh_clean_2.labels.ply (default) or aggregation+segs json via the tsv",
    )
    n = sub.add_parser("npy-clouds", help="mmdetection3d-style npy arrays to labeled clouds")
    n.add_argument("--src", type=Path, required=True)
    n.add_argument("--out", type=Path, required=True)
    s = sub.add_parser("splits", help="official lists + data-efficient subsets")
    s.add_argument("--split-dir", type=Path, required=True, help="folder with scannetv2_{train,val,test}.txt")
    s.add_argument("--out", type=Path, required=True)
    s.add_argument("--seed", type=int, default=0)
    s.add_argument(
        "--clouds", type=Path, default=None, help="prepared clouds (for the limited-points subsets)"
    )
    for q in (f, c):
        q.add_argument("--scenes", nargs="*", default=None, help="only these scene names")
        q.add_argument("--workers", type=int, default=1)
        q.add_argument("--overwrite", action="store_true")
    p.add_argument("-v", "--verbose", action="store_true")
    a = p.parse_args(argv)
    setup_logging(a.verbose)
    failures: list[dict[str, str]] = []
    if a.cmd == "frames":
        jobs = []
        for d in _scan_dirs(a.scans, a.scenes):
            sens = d / f"{d.name}.sens"
            if not sens.is_file():
                failures.append({"input": str(d), "reason": f"no {sens.name}"})
                continue
            jobs.append(
                {
                    "sens": str(sens),
                    "out": str(a.out / d.name),
                    "frame_skip": a.frame_skip,
                    "max_frames": a.max_frames,
                    "overwrite": a.overwrite,
                }
            )
        kept = 0
        for r in run_jobs(
            _frames_job, jobs, workers=a.workers, desc="scans", key=lambda j: Path(j["sens"]).stem
        ):
            if r.ok:
                kept += 1
            else:
                failures.append({"input": r.key, "reason": r.error})
        log.info("exported %d scans, %d failed", kept, len(failures))
    elif a.cmd == "clouds":
        index = CloudIndex.open_or_create(a.out, list(SCANNET20_CLASS_NAMES))
        done = set(index.names()) if not a.overwrite else set()
        jobs = [
            {
                "name": d.name,
                "dir": str(d),
                "tsv": str(a.labels_tsv) if a.labels_tsv else None,
                "label_source": a.label_source,
            }
            for d in _scan_dirs(a.scans, a.scenes)
            if d.name not in done
        ]
        for r in run_jobs(_cloud_job, jobs, workers=a.workers, desc="meshes", key=lambda j: j["name"]):
            if r.ok:
                index.add(*r.value)
            else:
                failures.append({"input": r.key, "reason": r.error})
        index.write()
    elif a.cmd == "npy-clouds":
        index = CloudIndex.open_or_create(a.out, list(SCANNET20_CLASS_NAMES))
        for vert in sorted(a.src.glob("*_vert_all.npy")):
            scene = vert.name[: -len("_vert_all.npy")]
            try:
                index.add(scene, npy_to_cloud(vert, vert.with_name(f"{scene}_sem_label_all.npy")))
            except (ScanNetFormatError, ValueError, OSError) as err:
                failures.append({"input": str(vert), "reason": str(err)})
        index.write()
        log.info("wrote %d clouds to %s", len(index), a.out)
    elif a.cmd == "splits":
        print(json.dumps(write_splits(a.split_dir, a.out, a.seed, a.clouds), indent=1))
    for fl in failures:
        log.error("failed %s: %s", fl["input"], fl["reason"])
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
