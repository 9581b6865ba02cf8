"""Fixtures of the pixvox.ops tests: every op test runs on the CPU, and on CUDA where a GPU is visible."""

from __future__ import annotations

import pytest
import torch


@pytest.fixture(params=["cpu", pytest.param("cuda", marks=pytest.mark.cuda)])
def device(request) -> torch.device:
    return torch.device(request.param)


@pytest.fixture
def gen(seed) -> torch.Generator:
    """A CPU generator seeded from the per-run ``seed`` fixture (inputs are made on the CPU, then moved)."""
    return torch.Generator().manual_seed(seed)
