"""Command-line arguments of the fine-tuning job (no torch import, so the CLI can set thread variables
before torch starts)."""

from __future__ import annotations

import argparse
import os
from collections.abc import Sequence

from pixvox.engine.job_args import parse_job_args

DEFAULT_CONFIG = "configs/finetune/synthetic.yaml"


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    return parse_job_args("pixvox fine-tuning for 3D semantic segmentation", DEFAULT_CONFIG, argv)


def set_thread_environment(argv: Sequence[str] | None = None) -> None:
    """Export ``OMP_NUM_THREADS`` from ``train.cpu_threads`` (when set and the variable is not) before
    torch is imported: threads of an OpenMP pool created earlier would keep spinning."""
    from pixvox.config import FinetuneConfig, load_config

    args = parse_args(argv)
    cfg = load_config(FinetuneConfig, args.config, args.overrides)
    if cfg.train.cpu_threads and cfg.train.device != "cuda":
        os.environ.setdefault("OMP_NUM_THREADS", str(cfg.train.cpu_threads))
