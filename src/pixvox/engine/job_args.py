"""Command-line arguments shared by the training jobs (pretraining, fine-tuning).

Imports neither torch nor the package's heavy modules, so a CLI can parse its arguments and set
thread variables before torch starts.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

RESUME_HELP = (
    "auto (default): continue from the newest complete checkpoint of this run if any; a checkpoint "
    "path; 'none' to start over; 'force' (or 'force:PATH') to resume although the config or the "
    "weight files differ from the checkpoint's"
)


def job_parser(description: str, default_config: str, prog: str | None = None) -> argparse.ArgumentParser:
    """The parser of ``[CONFIG] [key.sub=value ...] [--resume ...] [--prepare-data] [--debug]``."""
    p = argparse.ArgumentParser(
        prog=prog,
        description=description,
        epilog="Overrides are YAML values: train.max_steps=10 optim.lr=0.01 data.image_size=[120,160]. "
        "Print the resolved config with `pixvox config CONFIG [overrides]`.",
    )
    p.add_argument(
        "config", nargs="?", default=default_config, help=f"YAML config (default {default_config})"
    )
    p.add_argument("overrides", nargs="*", help="config overrides key.sub=value")
    p.add_argument("--resume", default="auto", help=RESUME_HELP)
    p.add_argument(
        "--prepare-data",
        action="store_true",
        help="only make sure the config's data exist (generate or convert them where the config says "
        "how), then exit; launchers run this once before starting the training processes",
    )
    p.add_argument(
        "--debug", action="store_true", help="show the traceback of user errors too (or PIXVOX_DEBUG=1)"
    )
    return p


def parse_job_args(
    description: str, default_config: str, argv: Sequence[str] | None = None, prog: str | None = None
) -> argparse.Namespace:
    """``[CONFIG] [key.sub=value ...] [--resume auto|PATH|none|force]`` → ``config``, ``overrides``,
    ``resume``, ``prepare_data``, ``debug``. Options may stand anywhere among the positionals.

    A first argument that holds ``=`` and is neither a ``.yaml`` name nor an existing file is an
    override of ``default_config``: ``pretrain.sh train.max_steps=10`` means the default recipe.
    """
    p = job_parser(description, default_config, prog)
    return split_config_and_overrides(p.parse_intermixed_args(argv), default_config)


def split_config_and_overrides(args: argparse.Namespace, default_config: str) -> argparse.Namespace:
    """Move a first positional ``key=value`` (not a config file) from ``args.config`` to the overrides."""
    first = args.config
    if "=" in first and not first.endswith((".yaml", ".yml")) and not Path(first).is_file():
        args.overrides, args.config = [first, *args.overrides], default_config
    return args
