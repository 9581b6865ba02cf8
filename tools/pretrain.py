#!/usr/bin/env python
"""Pretraining CLI (thin): ``python tools/pretrain.py [CONFIG] [key=value ...] [--resume auto|PATH|none]``.

``--prepare-data`` only makes sure the configured data exist (generating the synthetic default
dataset when ``data.synthetic.enabled``), then exits; tools/pretrain.sh runs it before torchrun.
"""

from __future__ import annotations

import sys

if __name__ == "__main__":
    argv = sys.argv[1:]
    if "--prepare-data" in argv:
        argv.remove("--prepare-data")
        from pixvox.prep.ensure import prepare_from_pretrain_args

        prepare_from_pretrain_args(argv)
    else:
        from pixvox.pretrain.run import main

        main(argv)
