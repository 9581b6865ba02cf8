"""Shared fixtures for the pixvox.prep tests: a small synthetic dataset made once per session."""

from __future__ import annotations

from pathlib import Path

import pytest

from pixvox.prep.synthetic import generate

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def synthetic_small(tmp_path_factory) -> Path:
    """2 synthetic rooms x 10 frames at 96x144 (frames/, clouds/), seed 7."""
    out = tmp_path_factory.mktemp("synthetic_small")
    generate(
        out,
        num_scenes=2,
        frames_per_scene=10,
        seed=7,
        image_size=(96, 144),
        points_per_m2=300,
        progress=False,
    )
    return out
