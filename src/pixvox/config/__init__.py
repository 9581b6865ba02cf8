"""Typed configs: YAML files under ``configs/`` loaded into dataclasses.

>>> from pixvox.config import PretrainConfig, load_config
>>> cfg = load_config(PretrainConfig, "configs/pretrain/quickstart.yaml", ["train.max_steps=10"])
"""

from pixvox.config.common import (
    ExperimentConfig,
    LoggingConfig,
    OptimConfig,
    ScheduleConfig,
    StudentConfig,
    TrainConfig,
    ValidationError,
)
from pixvox.config.finetune import FinetuneConfig
from pixvox.config.loader import ConfigError, apply_overrides, from_dict, load_config, save_config, to_dict
from pixvox.config.pretrain import PretrainConfig

__all__ = [
    "ConfigError",
    "ValidationError",
    "ExperimentConfig",
    "LoggingConfig",
    "OptimConfig",
    "ScheduleConfig",
    "StudentConfig",
    "TrainConfig",
    "PretrainConfig",
    "FinetuneConfig",
    "apply_overrides",
    "from_dict",
    "load_config",
    "save_config",
    "to_dict",
]
