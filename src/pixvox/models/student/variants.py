"""Named Res16UNet variants and :func:`build_student`.

Depth sets the block and blocks per stage (14: one basic block per stage, 18: two, 34: 2-3-4-6
encoder / 2-2-2-2 decoder, 50/101: bottlenecks); the letter sets the decoder widths (encoder widths
are always 32-64-128-256). "34C" is the standard pretraining backbone (same widths as plain "34").
"S" variants are half width, for CPU tests; "14T" (1.1 M parameters) is the offline Quickstart net.
Parameter counts: docs/models.md (checked by tests/models/student/test_variants.py).
"""

from __future__ import annotations

from dataclasses import dataclass

from pixvox.models.student.res16unet import Res16UNet

__all__ = ["StudentSpec", "STUDENT_VARIANTS", "build_student"]

_BASE = (32, 64, 128, 256, 256, 128, 96, 96)
_A = (32, 64, 128, 256, 128, 128, 96, 96)
_B = (32, 64, 128, 256, 128, 128, 128, 128)
_C14 = (32, 64, 128, 256, 192, 192, 128, 128)
_D = (32, 64, 128, 256, 384, 384, 384, 384)
_SMALL = (16, 32, 64, 128, 128, 64, 48, 48)

_L14 = (1, 1, 1, 1, 1, 1, 1, 1)
_L18 = (2, 2, 2, 2, 2, 2, 2, 2)
_L34 = (2, 3, 4, 6, 2, 2, 2, 2)
_L101 = (2, 3, 4, 23, 2, 2, 2, 2)


@dataclass(frozen=True)
class StudentSpec:
    """Architecture of one named variant (see :class:`Res16UNet` for the meaning of the fields)."""

    block: str
    layers: tuple[int, ...]
    planes: tuple[int, ...]
    init_dim: int = 32


STUDENT_VARIANTS: dict[str, StudentSpec] = {
    "Res16UNet14": StudentSpec("basic", _L14, _BASE),
    "Res16UNet18": StudentSpec("basic", _L18, _BASE),
    "Res16UNet34": StudentSpec("basic", _L34, _BASE),
    "Res16UNet50": StudentSpec("bottleneck", _L34, _BASE),
    "Res16UNet101": StudentSpec("bottleneck", _L101, _BASE),
    "Res16UNet14A": StudentSpec("basic", _L14, _A),
    "Res16UNet14A2": StudentSpec("basic", (1, 1, 1, 1, 2, 2, 2, 2), _A),
    "Res16UNet14B": StudentSpec("basic", _L14, _B),
    "Res16UNet14B2": StudentSpec("basic", (1, 1, 1, 1, 2, 2, 2, 2), _B),
    "Res16UNet14B3": StudentSpec("basic", (2, 2, 2, 2, 1, 1, 1, 1), _B),
    "Res16UNet14C": StudentSpec("basic", _L14, _C14),
    "Res16UNet14D": StudentSpec("basic", _L14, _D),
    "Res16UNet18A": StudentSpec("basic", _L18, _A),
    "Res16UNet18B": StudentSpec("basic", _L18, _B),
    "Res16UNet18D": StudentSpec("basic", _L18, _D),
    "Res16UNet34A": StudentSpec("basic", _L34, (32, 64, 128, 256, 256, 128, 64, 64)),
    "Res16UNet34B": StudentSpec("basic", _L34, (32, 64, 128, 256, 256, 128, 64, 32)),
    "Res16UNet34C": StudentSpec("basic", _L34, _BASE),
    # half width, for CPU tests
    "Res16UNet14S": StudentSpec("basic", _L14, _SMALL, init_dim=16),
    "Res16UNet34S": StudentSpec("basic", _L34, _SMALL, init_dim=16),
    # about 1.1 M parameters: the offline Quickstart
    "Res16UNet14T": StudentSpec("basic", _L14, (16, 32, 48, 64, 64, 48, 32, 32), init_dim=16),
}


def build_student(name: str, in_channels: int, out_channels: int, **kw) -> Res16UNet:
    """Build a named variant.

    Args:
        name: a key of :data:`STUDENT_VARIANTS`, e.g. ``"Res16UNet34C"``.
        in_channels: 3 for RGB, 1 for constant ones (geometry only).
        out_channels: width of the last 1×1×1 layer ``final``.
        kw: overrides of the variant (``planes``, ``layers``, ``block``, ``init_dim``) and
            :class:`Res16UNet` options (``kernel_size``, ``conv1_kernel_size``, ``bn_momentum``).
    """
    if name not in STUDENT_VARIANTS:
        raise ValueError(f"unknown student {name!r}; choose one of {', '.join(STUDENT_VARIANTS)}")
    spec = STUDENT_VARIANTS[name]
    arch = dict(block=spec.block, layers=spec.layers, planes=spec.planes, init_dim=spec.init_dim)
    arch.update(kw)
    return Res16UNet(in_channels, out_channels, **arch)
