"""Shared by the data_prep/ scripts: run one preparer of ``pixvox.prep`` with this script's arguments.

The scripts are thin shims kept for their familiar paths; ``python -m pixvox.prep <dataset> ...`` is
the same command. They need pixvox installed in the running interpreter (no ``sys.path`` tricks).
"""

from __future__ import annotations

import sys


def run(dataset: str) -> None:
    """Exit with the status of ``python -m pixvox.prep <dataset> <this script's arguments>``."""
    try:
        from pixvox.prep.cli import main
    except ImportError as err:
        sys.exit(
            f"{sys.argv[0]}: cannot import pixvox ({err}). Set up the environment and activate it first:\n"
            "  bash tools/setup_env.sh && source .venv/bin/activate"
        )
    sys.exit(main([dataset, *sys.argv[1:]]))
