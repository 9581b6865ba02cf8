"""Depth encodings: SUN RGB-D bit rotation, NYU raw Kinect conversion, linear scales; real frames."""

from __future__ import annotations

import numpy as np
import pytest

from pixvox.io.depth import (
    NYU_INVALID_RAW,
    mm_to_sunrgbd,
    nyu_fix_byte_order,
    nyu_raw_to_mm,
    scale_to_mm,
    sunrgbd_to_mm,
)
from pixvox.io.images import read_depth_png, read_pgm16


def test_sunrgbd_rotation_inverse_and_hand_example(seed):
    rng = np.random.default_rng(seed)
    mm = rng.integers(0, 65536, (13, 17), dtype=np.uint16)
    np.testing.assert_array_equal(sunrgbd_to_mm(mm_to_sunrgbd(mm)), mm)
    # 2000 mm: stored 2000 << 3 = 16000; 9000 mm: (9000 << 3) mod 2^16 | 9000 >> 13 = 6464 | 1
    raw = np.array([[16000, ((9000 << 3) & 0xFFFF) | (9000 >> 13)]], dtype=np.uint16)
    np.testing.assert_array_equal(sunrgbd_to_mm(raw), [[2000, 9000]])


def test_nyu_formula_against_float64_reference(seed):
    rng = np.random.default_rng(seed)
    raw = rng.integers(0, 2048, (20, 30)).astype(np.uint16)
    got = nyu_raw_to_mm(raw, max_m=10.0)
    for r, g in zip(raw.reshape(-1), got.reshape(-1)):
        if r >= NYU_INVALID_RAW:
            assert g == 0
            continue
        d = 351.3 / (1092.5 - float(r))
        assert g == (round(d * 1000) if 0 < d <= 10.0 else 0)


def test_nyu_byte_order(seed):
    raw = np.array([[839, 986, 2047]], dtype=np.uint16)
    np.testing.assert_array_equal(nyu_fix_byte_order(raw.byteswap()), raw)
    np.testing.assert_array_equal(nyu_fix_byte_order(raw), raw)
    with pytest.raises(ValueError, match="byte order"):
        nyu_raw_to_mm(raw.byteswap())


def test_scale_to_mm(seed):
    rng = np.random.default_rng(seed)
    raw = rng.integers(0, 65536, (9, 9), dtype=np.uint16)
    np.testing.assert_array_equal(scale_to_mm(raw, 1000), raw)
    tum = scale_to_mm(raw, 5000)
    np.testing.assert_array_equal(tum, np.round(raw.astype(np.float64) / 5).astype(np.uint16))
    big = scale_to_mm(np.array([[100]], np.uint16), 1)  # 100 m does not fit uint16 millimetres
    assert big[0, 0] == 0
    with pytest.raises(ValueError):
        scale_to_mm(raw.astype(np.int32), 1000)


def test_real_sun_depth_is_shifted_millimetres(shared_data):
    raw = read_depth_png(shared_data / "single_frames" / "SUN_depth.png")
    mm = sunrgbd_to_mm(raw)
    valid = mm[mm > 0]
    assert valid.size > 0.5 * mm.size
    # Unshifted values would read 8x too far; decoded ones are indoor distances.
    assert 500 < np.median(valid) < 6000 and valid.max() < 12000
    assert np.median(raw[raw > 0]) > 8 * 500


def test_real_nyu_raw_depth(shared_data):
    raw = nyu_fix_byte_order(read_pgm16(shared_data / "single_frames" / "NYU_depth.pgm"))
    assert raw.max() <= 2047  # as read (big-endian per spec) it was not; the file is little-endian
    mm = nyu_raw_to_mm(raw)
    valid = mm[mm > 0]
    assert valid.size > 0.8 * mm.size
    assert 1000 < np.median(valid) < 6000
    assert ((mm == 0) == (raw >= NYU_INVALID_RAW)).mean() > 0.999


def test_real_tum_depth_scale(shared_data):
    mm = scale_to_mm(read_depth_png(shared_data / "single_frames" / "TUM_depth.png"), 5000)
    valid = mm[mm > 0]
    assert 500 < np.median(valid) < 6000 and valid.max() < 12000
