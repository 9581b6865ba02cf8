"""Command-line arguments of the fine-tuning job (no torch import, so the CLI can set thread variables
before torch starts)."""

from __future__ import annotations

import argparse
import os
from collections.abc import Sequence

DEFAULT_CONFIG = "configs/finetune/synthetic.yaml"


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description="pixvox fine-tuning for 3D semantic segmentation")
    p.add_argument(
        "config", nargs="?", default=DEFAULT_CONFIG, help=f"YAML config (default {DEFAULT_CONFIG})"
    )
    p.add_argument("overrides", nargs="*", help="config overrides key.sub=value")
    p.add_argument(
        "--resume",
        default="auto",
        help="auto (default): continue from the newest complete checkpoint of this run if any; "
        "a checkpoint path; or 'none' to start over",
    )
    args = p.parse_args(argv)
    if "=" in args.config and not args.config.endswith((".yaml", ".yml")):  # only overrides were given
        args.overrides, args.config = [args.config, *args.overrides], DEFAULT_CONFIG
    return args


def set_thread_environment(argv: Sequence[str] | None = None) -> None:
    """Export ``OMP_NUM_THREADS`` from ``train.cpu_threads`` (when set and the variable is not) before
    torch is imported: threads of an OpenMP pool created earlier would keep spinning."""
    from pixvox.config import FinetuneConfig, load_config

    args = parse_args(argv)
    cfg = load_config(FinetuneConfig, args.config, args.overrides)
    if cfg.train.cpu_threads and cfg.train.device != "cuda":
        os.environ.setdefault("OMP_NUM_THREADS", str(cfg.train.cpu_threads))
