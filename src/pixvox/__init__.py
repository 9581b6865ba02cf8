"""pixvox: pretrain sparse-voxel 3D networks with knowledge from frozen 2D networks.

Data flows one way: ``pixvox.prep`` → prepared files → ``pixvox.datasets`` → ``pixvox.models`` →
``pixvox.losses`` → ``pixvox.engine``. MinkowskiEngine is imported only through ``pixvox.sparse``.
"""

from __future__ import annotations

__version__ = "0.1.0"


def ext_status() -> str:
    """Say whether the compiled cuda_ext kernels are importable, and for which devices."""
    import torch  # noqa: F401 - loads libc10/libtorch, which the extension links against

    try:
        from pixvox import _ext  # type: ignore[attr-defined]
    except ImportError as err:  # pragma: no cover - depends on the build
        return f"not built ({err})"
    return "cpu+cuda" if getattr(_ext, "with_cuda", lambda: False)() else "cpu"
