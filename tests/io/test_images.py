"""Image codecs: exact round trips, clear errors on bad files, resampling against brute force."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from pixvox.io.images import (
    ImageReadError,
    decode_color,
    decode_color_draft,
    encode_color,
    encode_depth_png,
    read_color,
    read_depth_png,
    read_pgm16,
    resize_depth_nearest,
    write_color,
    write_depth_png,
)


@pytest.mark.parametrize("level", [0, 1, 3, 9])
def test_depth_png_round_trip_exact(tmp_path, seed, level):
    # Our PNG writer is checked by PIL's independent decoder, on random values including 0 and 65535.
    rng = np.random.default_rng(seed)
    depth = rng.integers(0, 65536, size=(int(rng.integers(1, 60)), int(rng.integers(1, 80))), dtype=np.uint16)
    depth.flat[0], depth.flat[-1] = 65535, 0
    (tmp_path / "d.png").write_bytes(encode_depth_png(depth, level))
    got = read_depth_png(tmp_path / "d.png")
    assert got.dtype == np.uint16
    np.testing.assert_array_equal(got, depth)
    with Image.open(tmp_path / "d.png") as im:
        assert im.format == "PNG" and im.mode.startswith("I")


def test_real_depth_png_reencoded(shared_data, tmp_path):
    src = shared_data / "icl_livingroom1" / "depth" / "00000.png"
    depth = read_depth_png(src)
    write_depth_png(tmp_path / "d.png", depth)
    np.testing.assert_array_equal(read_depth_png(tmp_path / "d.png"), depth)
    assert (tmp_path / "d.png").stat().st_size < 2 * src.stat().st_size  # compresses like a normal PNG


def test_color_png_exact_and_jpeg_close(tmp_path, seed):
    rng = np.random.default_rng(seed)
    rgb = rng.integers(0, 256, size=(31, 47, 3), dtype=np.uint8)
    write_color(tmp_path / "c.png", rgb)
    np.testing.assert_array_equal(read_color(tmp_path / "c.png"), rgb)
    smooth = np.repeat(np.repeat(rgb[:4, :6], 16, 0), 16, 1)  # MCU-aligned flat blocks: JPEG keeps them
    write_color(tmp_path / "c.jpg", smooth, quality=95)
    got = read_color(tmp_path / "c.jpg")
    assert got.shape == smooth.shape
    assert np.abs(got.astype(int) - smooth).mean() < 6


def test_gray_and_alpha_become_rgb(tmp_path):
    Image.fromarray(np.full((4, 5), 77, np.uint8), "L").save(tmp_path / "g.png")
    got = read_color(tmp_path / "g.png")
    assert got.shape == (4, 5, 3) and (got == 77).all()


@pytest.mark.parametrize("kind", ["truncated", "garbage", "missing"])
def test_bad_files_name_the_file(tmp_path, kind):
    p = tmp_path / "x.jpg"
    data = encode_color(np.zeros((64, 64, 3), np.uint8) + 100)
    if kind == "truncated":
        p.write_bytes(data[: len(data) // 2])
    elif kind == "garbage":
        p.write_bytes(b"not an image" * 10)
    with pytest.raises(ImageReadError, match="x.jpg"):
        read_color(p)
    with pytest.raises(ImageReadError, match="x.jpg"):
        read_depth_png(p)


def test_8bit_png_is_not_depth(tmp_path):
    Image.fromarray(np.zeros((3, 3), np.uint8)).save(tmp_path / "d8.png")
    with pytest.raises(ImageReadError, match="16-bit"):
        read_depth_png(tmp_path / "d8.png")


def test_depth_given_as_color_is_refused(tmp_path):
    write_depth_png(tmp_path / "d.png", np.ones((3, 3), np.uint16))
    with pytest.raises(ImageReadError, match="depth"):
        read_color(tmp_path / "d.png")


def test_pgm16_big_endian_with_comment(tmp_path, seed):
    rng = np.random.default_rng(seed)
    h, w = 5, 7
    vals = rng.integers(0, 65536, size=(h, w), dtype=np.uint16)
    body = b"".join(int(v).to_bytes(2, "big") for v in vals.reshape(-1))
    (tmp_path / "a.pgm").write_bytes(b"P5\n# a comment\n%d %d\n65535\n" % (w, h) + body)
    np.testing.assert_array_equal(read_pgm16(tmp_path / "a.pgm"), vals)
    (tmp_path / "t.pgm").write_bytes(b"P5 7 5 65535\n" + body[:-3])
    with pytest.raises(ImageReadError, match="truncated"):
        read_pgm16(tmp_path / "t.pgm")
    (tmp_path / "b.pgm").write_bytes(b"P5 7 5 255\n" + body)
    with pytest.raises(ImageReadError, match="16-bit"):
        read_pgm16(tmp_path / "b.pgm")


def test_resize_depth_nearest_matches_definition(seed):
    rng = np.random.default_rng(seed)
    H, W = int(rng.integers(5, 40)), int(rng.integers(5, 40))
    h, w = int(rng.integers(1, 50)), int(rng.integers(1, 50))
    depth = rng.integers(0, 5000, (H, W), dtype=np.uint16)
    got = resize_depth_nearest(depth, (h, w))
    for r in range(h):
        for c in range(w):
            # the source pixel whose area [i, i+1) contains the output pixel centre (in source pixel units)
            i = min(int(np.floor((r + 0.5) * H / h)), H - 1)
            j = min(int(np.floor((c + 0.5) * W / w)), W - 1)
            assert got[r, c] == depth[i, j]


def test_draft_decode_pixel_mapping():
    # A horizontal ramp: draft-decoded pixel u must have the value of full-size pixel s*u + (s-1)/2.
    W, H = 256, 64
    ramp = np.tile(np.linspace(0, 255, W), (H, 1))
    rgb = np.repeat(ramp[..., None], 3, 2).round().astype(np.uint8)
    data = encode_color(rgb, quality=100)
    full = decode_color(data, "ramp")
    small, s = decode_color_draft(data, "ramp", (64, 16))
    assert s == 4 and small.shape == (16, 64, 3)
    u = np.arange(8, 56)
    expect = np.interp(s * u + (s - 1) / 2, np.arange(W), full[H // 2, :, 0].astype(float))
    assert np.abs(small[8, u, 0] - expect).max() < 3


def test_encoders_validate_dtype():
    with pytest.raises(ValueError):
        encode_depth_png(np.zeros((3, 3), np.int32))
    with pytest.raises(ValueError):
        encode_color(np.zeros((3, 3, 3), np.float32))
    assert isinstance(io.BytesIO(encode_depth_png(np.zeros((2, 2), np.uint16))).getvalue(), bytes)
