#!/usr/bin/env python
"""MinkowskiEngine CPU convolution at 1 and 2 threads on a real ScanNet room (see pixvox.bench.sparse).

Usage: python tools/bench_sparse.py [--quick] [--json PATH] [--repeats N] [--room DIR]
"""

from __future__ import annotations

import sys

from pixvox.bench.sparse import main

if __name__ == "__main__":
    sys.exit(main())
