"""ScanNet's ``.sens`` RGB-D stream: header and frame records, read frame by frame.

The layout (little-endian, as written by ScanNet's SensReader) is documented in docs/data.md and in
:class:`SensReader`. Skipped frames are seeked over, never read or decoded.
"""

from __future__ import annotations

import io
import struct
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np

from pixvox.io.depth import scale_to_mm
from pixvox.io.images import ImageReadError, decode_color, decode_color_draft

COLOR_COMPRESSION = {-1: "unknown", 0: "raw", 1: "png", 2: "jpeg"}
DEPTH_COMPRESSION = {-1: "unknown", 0: "raw_ushort", 1: "zlib_ushort", 2: "occi_ushort"}


class SensFormatError(ValueError):
    """A ``.sens`` file is truncated or not in the documented layout (the message names file and frame)."""


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
