"""Dataset depth encodings → uint16 millimetres (0 = no depth), the depth unit of every prepared file.

- ``scale_to_mm(raw, units_per_metre)``: linear encodings (ScanNet/ICL/7-Scenes/Redwood 1000 per metre,
  TUM 5000 per metre). Values that do not fit uint16 millimetres become 0.
- ``sunrgbd_to_mm(raw)``: SUN RGB-D's PNGs store millimetres rotated left by 3 bits
  (``raw = mm << 3 | mm >> 13``); undoing it is a 3-bit circular right shift.
- ``nyu_raw_to_mm(raw)``: NYU Depth v2 raw Kinect values (11-bit disparity-like numbers) → metres with
  the NYU toolbox formula ``depth_m = 351.3 / (1092.5 - raw)``; raw values >= 1084 (no return; the
  formula would exceed ~41 m or go negative) and depths beyond ``max_m`` (default 10 m, the toolbox's
  clamp value) become 0 instead of being clamped, so no invented depth enters the fusion.
"""

from __future__ import annotations

import numpy as np

#: NYU toolbox constants (depth_rel2depth_abs.m): depth_m = NYU_A / (NYU_B - raw).
NYU_A = 351.3
NYU_B = 1092.5
#: Raw NYU values at or above this carry no measurement (2047 = Kinect "no return").
NYU_INVALID_RAW = 1084


def _check_u16(raw: np.ndarray, what: str) -> np.ndarray:
    raw = np.asarray(raw)
    if raw.ndim != 2:
        raise ValueError(f"{what}: depth must be [H, W], got shape {raw.shape}")
    if raw.dtype != np.uint16:
        raise ValueError(f"{what}: expected uint16 raw depth, got {raw.dtype}")
    return raw


def scale_to_mm(raw: np.ndarray, units_per_metre: float) -> np.ndarray:
    """uint16 raw depth with ``units_per_metre`` (1000 = millimetres) → uint16 mm, rounded; 0 stays 0."""
    raw = _check_u16(raw, "scale_to_mm")
    if not units_per_metre > 0:
        raise ValueError(f"units_per_metre must be > 0, got {units_per_metre}")
    if units_per_metre == 1000:
        return raw.copy()
    mm = np.round(raw.astype(np.float64) * (1000.0 / units_per_metre))
    return np.where(mm <= 65535, mm, 0).astype(np.uint16)


def sunrgbd_to_mm(raw: np.ndarray) -> np.ndarray:
    """SUN RGB-D depth PNG values → uint16 mm (3-bit circular right shift on 16 bits)."""
    raw = _check_u16(raw, "sunrgbd_to_mm")
    return ((raw >> np.uint16(3)) | (raw << np.uint16(13))).astype(np.uint16)


def mm_to_sunrgbd(mm: np.ndarray) -> np.ndarray:
    """Inverse of :func:`sunrgbd_to_mm` (3-bit circular left shift), for writing test fixtures."""
    mm = _check_u16(mm, "mm_to_sunrgbd")
    return ((mm << np.uint16(3)) | (mm >> np.uint16(13))).astype(np.uint16)


def nyu_raw_to_mm(raw: np.ndarray, max_m: float = 10.0) -> np.ndarray:
    """NYU Depth v2 raw Kinect values (uint16, 0..2047, already in native byte order) → uint16 mm.

    Raises if values exceed 2047: the file was then decoded with the wrong byte order (NYU's raw PGM
    dumps are little-endian although PGM is big-endian by definition; byteswap them first).
    """
    raw = _check_u16(raw, "nyu_raw_to_mm")
    if raw.size and raw.max() > 2047:
        raise ValueError(
            f"NYU raw depth has values up to {raw.max()} > 2047 (11-bit Kinect range): wrong byte order? "
            "byteswap() the array (NYU raw PGM files are little-endian)"
        )
    r = raw.astype(np.float64)
    valid = r < NYU_INVALID_RAW
    depth_m = np.where(valid, NYU_A / np.where(valid, NYU_B - r, 1.0), 0.0)
    depth_m = np.where((depth_m > 0) & (depth_m <= max_m), depth_m, 0.0)
    return np.round(depth_m * 1000.0).astype(np.uint16)


def nyu_fix_byte_order(raw: np.ndarray) -> np.ndarray:
    """Return NYU raw depth in native order: byteswapped when read big-endian (values > 2047), else as is."""
    raw = _check_u16(raw, "nyu_fix_byte_order")
    if raw.size and raw.max() > 2047:
        swapped = raw.byteswap()
        if swapped.max() <= 2047:
            return swapped
        raise ValueError(
            "NYU raw depth exceeds the 11-bit Kinect range in either byte order; not a NYU raw frame"
        )
    return raw
