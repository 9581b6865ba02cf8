"""Command-line arguments shared by the training jobs (pretraining, fine-tuning).

Imports neither torch nor the package's heavy modules, so a CLI can parse its arguments and set
thread variables before torch starts.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path


def parse_job_args(
    description: str, default_config: str, argv: Sequence[str] | None = None
) -> argparse.Namespace:
    """``[CONFIG] [key.sub=value ...] [--resume auto|PATH|none]`` → ``config``, ``overrides``, ``resume``.

    A first argument that holds ``=`` and is neither a ``.yaml`` name nor an existing file is an
    override of ``default_config``: ``pretrain.sh train.max_steps=10`` means the default recipe.
    """
    p = argparse.ArgumentParser(description=description)
    p.add_argument(
        "config", nargs="?", default=default_config, help=f"YAML config (default {default_config})"
    )
    p.add_argument("overrides", nargs="*", help="config overrides key.sub=value")
    p.add_argument(
        "--resume",
        default="auto",
        help="auto (default): continue from the newest complete checkpoint of this run if any; "
        "a checkpoint path; or 'none' to start over",
    )
    return split_config_and_overrides(p.parse_args(argv), default_config)


def split_config_and_overrides(args: argparse.Namespace, default_config: str) -> argparse.Namespace:
    """Move a first positional ``key=value`` (not a config file) from ``args.config`` to the overrides."""
    first = args.config
    if "=" in first and not first.endswith((".yaml", ".yml")) and not Path(first).is_file():
        args.overrides, args.config = [first, *args.overrides], default_config
    return args
