#!/usr/bin/env python
"""Time the real pretraining job per stage (thin wrapper): prepares the config's data, then runs
pixvox.bench.pretrain.

    python tools/bench_pretrain.py [CONFIG] [key=value ...] [--steps N] [--warmup N] [--quick] [--json PATH]
"""

from __future__ import annotations

import sys

if __name__ == "__main__":
    from pixvox.bench.pretrain import main, parse_args
    from pixvox.prep.ensure import prepare_from_pretrain_args

    argv = sys.argv[1:]
    if not {"-h", "--help"} & set(argv):
        a = parse_args(argv)
        prepare_from_pretrain_args([a.config, *a.overrides])
    main(argv)
