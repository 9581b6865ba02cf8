"""Fixtures of the dataset tests: small labeled-cloud folders written on the fly."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from pixvox.io.clouds import CloudIndex, LabeledCloud


def write_index(root: Path, clouds: dict[str, LabeledCloud], classes: list[str]) -> CloudIndex:
    """Write ``clouds`` as a labeled-cloud dataset in ``root`` and load it back."""
    index = CloudIndex.open_or_create(root, classes)
    for name, cloud in clouds.items():
        index.add(name, cloud)
    index.write()
    return CloudIndex.load(root)


@pytest.fixture
def make_index() -> Callable[[Path, dict[str, LabeledCloud], list[str]], CloudIndex]:
    """``make_index(root, {name: cloud}, class_names) -> CloudIndex`` (written, then loaded)."""
    return write_index
