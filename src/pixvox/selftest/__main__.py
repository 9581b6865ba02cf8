"""``python -m pixvox.selftest [--device auto|cpu|cuda] [--json PATH] [--only ...] [--skip ...]``."""

from __future__ import annotations

import sys

from pixvox.selftest import main

if __name__ == "__main__":
    sys.exit(main())
