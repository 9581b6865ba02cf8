"""pixvox: pretrain sparse-voxel 3D networks with knowledge from frozen 2D networks.

Data flows one way: ``pixvox.prep`` → prepared files → ``pixvox.datasets`` → ``pixvox.models`` →
``pixvox.losses`` → ``pixvox.engine``. MinkowskiEngine is imported only through ``pixvox.sparse``.
"""

from __future__ import annotations

import collections
import collections.abc

__version__ = "0.1.0"

# MinkowskiEngine 0.5.4 does `from collections import Sequence`, removed in Python 3.10. Restoring the
# alias here (it costs nothing and imports nothing) lets `import pixvox, MinkowskiEngine` work as well
# as `from pixvox.sparse import ME`; pixvox.sparse repeats it for code that loads that module alone.
if not hasattr(collections, "Sequence"):
    collections.Sequence = collections.abc.Sequence  # type: ignore[attr-defined]


def ext_status() -> str:
    """Say whether the compiled cuda_ext kernels are importable, and for which devices."""
    import torch  # noqa: F401 - loads libc10/libtorch, which the extension links against

    try:
        from pixvox import _ext  # type: ignore[attr-defined]
    except ImportError as err:  # pragma: no cover - depends on the build
        return f"not built ({err})"
    return "cpu+cuda" if getattr(_ext, "with_cuda", lambda: False)() else "cpu"
