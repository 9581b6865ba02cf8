"""Access to the compiled kernels (``pixvox._ext``, built from ``cuda_ext/``) and device dispatch.

The extension is imported on first use, so ``pixvox.ops.reference`` stays importable without it;
there is deliberately no fallback to the reference in the public API.
"""

from __future__ import annotations

import functools
from types import ModuleType
from typing import Callable

import torch

_BUILD_HINT = (
    "Run `bash tools/setup_env.sh` from the repository root: it compiles cuda_ext/ into pixvox._ext "
    "(during development `python setup.py build_ext --inplace` rebuilds it in place)."
)


@functools.cache
def extension() -> ModuleType:
    """The ``pixvox._ext`` module; raises ImportError with the build command when it is missing."""
    try:
        from pixvox import _ext  # type: ignore[attr-defined]
    except ImportError as err:
        raise ImportError(
            f"pixvox's compiled kernels (pixvox._ext) cannot be imported: {err}. {_BUILD_HINT}"
        ) from err
    return _ext


def kernel(name: str, device: torch.device) -> Callable:
    """The CPU or CUDA variant of kernel ``name`` for tensors on ``device``."""
    ext = extension()
    if device.type == "cpu":
        return getattr(ext, f"{name}_cpu")
    if device.type == "cuda":
        if not ext.with_cuda():
            raise RuntimeError(
                f"{name}: the inputs are on {device}, but pixvox._ext was built without CUDA kernels. "
                "Rebuild it where nvcc and a CUDA build of torch are present: "
                "`PIXVOX_CUDA=1 bash tools/setup_env.sh`."
            )
        return getattr(ext, f"{name}_cuda")
    raise ValueError(f"{name} runs on CPU or CUDA tensors, got tensors on {device}")
