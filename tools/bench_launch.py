#!/usr/bin/env python
"""Seconds from `bash tools/pretrain.sh` to the first training step of a second launch (see pixvox.bench.launch).

Usage: python tools/bench_launch.py [--repeats N] [--json PATH]
"""

from __future__ import annotations

import sys

from pixvox.bench.launch import main

if __name__ == "__main__":
    sys.exit(main())
