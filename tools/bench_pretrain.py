#!/usr/bin/env python
"""Time the real pretraining job per stage (thin wrapper): prepares the config's data, then runs
pixvox.bench.pretrain.

    python tools/bench_pretrain.py [CONFIG] [key=value ...] [--steps N] [--warmup N] [--quick] [--json PATH]
"""

from __future__ import annotations

import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # data_prep/ lives beside the package

if __name__ == "__main__":
    from pixvox.bench.pretrain import main, parse_args

    argv = sys.argv[1:]
    if not {"-h", "--help"} & set(argv):
        from data_prep.default_dataset import prepare_from_pretrain_args

        a = parse_args(argv)
        prepare_from_pretrain_args([a.config, *a.overrides])
    main(argv)
