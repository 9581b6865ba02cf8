#!/usr/bin/env python
"""The fault and bad-input campaign (see pixvox.bench.faults): kill -9 + resume, bad inputs, NaN losses.

Usage: python tools/fault_bench.py [--quick] [--kills PREP PRETRAIN FINETUNE] [--cases TEXT] [--json PATH] [--md PATH]
"""

from __future__ import annotations

import sys

from pixvox.bench.faults import main

if __name__ == "__main__":
    sys.exit(main())
