"""Loading of pixvox._ext: clear errors when it is missing or lacks the kernels for a device."""

from __future__ import annotations

import sys

import pytest
import torch

from pixvox.ops import _extension


def test_missing_extension_names_the_fix(monkeypatch):
    _extension.extension.cache_clear()
    monkeypatch.setitem(sys.modules, "pixvox._ext", None)  # makes `from pixvox import _ext` fail
    monkeypatch.delattr("pixvox._ext", raising=False)
    try:
        with pytest.raises(ImportError, match=r"bash tools/setup_env\.sh"):
            _extension.kernel("gather_from_voxels", torch.device("cpu"))
    finally:
        _extension.extension.cache_clear()


def test_device_dispatch():
    ext = _extension.extension()
    assert _extension.kernel("gather_from_voxels", torch.device("cpu")) is ext.gather_from_voxels_cpu
    if ext.with_cuda():
        assert _extension.kernel("gather_from_voxels", torch.device("cuda")) is ext.gather_from_voxels_cuda
    else:
        with pytest.raises(RuntimeError, match="built without CUDA kernels"):
            _extension.kernel("gather_from_voxels", torch.device("cuda"))
    with pytest.raises(ValueError, match="CPU or CUDA"):
        _extension.kernel("gather_from_voxels", torch.device("meta"))
