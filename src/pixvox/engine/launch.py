"""Start a training job from its command line: the one code path of ``pixvox pretrain|finetune``,
``tools/pretrain.py``, ``tools/finetune_seg.py`` and in-process callers (``pixvox.pretrain.run.main``).

Parsing the arguments and loading the config import no torch, so the thread count (pixvox.engine.threads)
is exported before torch creates its OpenMP pool; only then is the job's module imported.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from pixvox.config import FinetuneConfig, PretrainConfig, load_config
from pixvox.engine.job_args import parse_job_args
from pixvox.engine.logger import setup_console_logging
from pixvox.engine.threads import export_thread_count

__all__ = ["JobInfo", "JOBS", "job_class", "run_job"]


@dataclass(frozen=True)
class JobInfo:
    """What the command line knows of a job before torch is loaded."""

    name: str  #: the ``pixvox`` verb
    description: str
    default_config: str  #: relative to the working directory (the repository root for the tools)
    config_class: type
    job_class: str  #: ``module:Class`` of its :class:`pixvox.engine.job.TrainingJob`
    prepare: str  #: ``module:function(cfg)`` making its data, importable without torch (the job's
    #: ``prepare_data`` calls the same function)


JOBS: dict[str, JobInfo] = {
    "pretrain": JobInfo(
        "pretrain",
        "pixvox pretraining: PPKT pixel-to-voxel transfer and/or PointContrast",
        "configs/pretrain/quickstart.yaml",
        PretrainConfig,
        "pixvox.pretrain.run:PretrainJob",
        "pixvox.prep.ensure:ensure_pretrain_data",
    ),
    "finetune": JobInfo(
        "finetune",
        "pixvox fine-tuning for 3D semantic segmentation (scratch, pretrained or linear probe)",
        "configs/finetune/synthetic.yaml",
        FinetuneConfig,
        "pixvox.finetune.run:FinetuneJob",
        "pixvox.prep.ensure:ensure_segmentation_data",
    ),
}


def _resolve(target: str) -> Any:
    module, _, name = target.partition(":")
    return getattr(importlib.import_module(module), name)


def job_class(info: JobInfo) -> Any:
    return _resolve(info.job_class)


def run_job(name: str, argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Parse ``argv`` (``[CONFIG] [overrides] [--resume ...] [--prepare-data]``), then prepare the data
    or run the job. Returns the job's summary (empty after ``--prepare-data``)."""
    info = JOBS[name]
    args = parse_job_args(info.description, info.default_config, argv, prog=f"pixvox {name}")
    cfg = load_config(info.config_class, args.config, args.overrides)
    if args.prepare_data:  # without torch: a launch whose data exist spends ~0.5 s here, not ~4 s
        setup_console_logging(True)
        _resolve(info.prepare)(cfg)
        return {}
    if "torch" not in sys.modules:  # in-process callers already have their pool; they get set_num_threads
        export_thread_count(cfg.train.num_workers, cfg.train.cpu_threads)
    return job_class(info).launch(cfg, args.resume)
