#!/usr/bin/env python
"""Back-projection, scatter and gather kernels against the PyTorch reference (thin wrapper).

    python tools/bench_backproject.py [--quick] [--json PATH] [--threads 1,2] [--repeats N] [--device cpu|cuda]

The benchmark lives in pixvox.bench.backproject (see its docstring and docs/benchmarks.md).
"""

from __future__ import annotations

import sys

from pixvox.bench.backproject import main

if __name__ == "__main__":
    main(sys.argv[1:])
