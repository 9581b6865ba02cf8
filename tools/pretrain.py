#!/usr/bin/env python
"""Pretraining CLI (thin; tools/pretrain.sh is the launcher): the same code path as ``pixvox pretrain``.

``python tools/pretrain.py [CONFIG] [key=value ...] [--resume auto|PATH|none|force] [--prepare-data]``.
``--prepare-data`` only makes sure the configured data exist (generating the synthetic default
dataset when ``data.synthetic.enabled``), then exits; tools/pretrain.sh runs it before torchrun.
"""

from __future__ import annotations

import sys

try:
    from pixvox.cli import main
except ImportError as err:  # run outside the environment
    sys.exit(
        f"pixvox is not importable ({err}): run `bash tools/setup_env.sh` and `source .venv/bin/activate`"
    )

if __name__ == "__main__":
    sys.exit(main(["pretrain", *sys.argv[1:]]))
