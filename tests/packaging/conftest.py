"""Fixtures of the packaging checks."""

from __future__ import annotations

import pytest

from tests.packaging.common import SETUP_PY, setup_constants


@pytest.fixture(scope="module")
def constants() -> dict[str, str]:
    """setup.py's TORCH_VERSION, MINKOWSKIENGINE_VERSION and python_requires."""
    return setup_constants(SETUP_PY.read_text())
