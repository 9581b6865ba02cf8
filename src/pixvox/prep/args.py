"""Argument types shared by the preparation CLIs."""

from __future__ import annotations

import argparse


def image_size(text: str) -> tuple[int, int]:
    """``"240x320"`` → ``(240, 320)`` (height, width in pixels), at least 8×8."""
    try:
        h, w = (int(x) for x in text.lower().split("x"))
    except ValueError as err:
        raise argparse.ArgumentTypeError(f"image size must look like 240x320 (HxW), got {text!r}") from err
    if h < 8 or w < 8:
        raise argparse.ArgumentTypeError(f"image size must be at least 8x8, got {text!r}")
    return h, w
