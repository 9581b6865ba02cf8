"""``pixvox selftest``: one command that says whether this install computes correctly on this machine.

On the CPU and every visible GPU it compares MinkowskiEngine's convolutions with a dense float64
reference, every compiled ``cuda_ext`` op with :mod:`pixvox.ops.reference`, runs a 20-step
pretraining job and a 2-process step, and the quick benchmarks; it prints a table, writes a JSON
report and exits non-zero on any failure. Run it on every new node (``bash tools/selftest.sh``).

Modules: :mod:`~pixvox.selftest.runner` (command line, table, JSON), :mod:`~pixvox.selftest.report`
(results and the tolerance comparison), one module per family of checks, and
:mod:`~pixvox.selftest.synthetic` (the scene every check draws its inputs from).
"""

from __future__ import annotations

from collections.abc import Sequence

__all__ = ["main"]


def main(argv: Sequence[str] | None = None) -> int:
    """Run the self-test with command-line arguments ``argv``; returns the exit status (0 = no failure)."""
    from pixvox.selftest.runner import main as run

    return run(argv)
