"""Optimizers and learning-rate schedules with linear warm-up."""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import torch

from pixvox.config.common import OptimConfig, ScheduleConfig


def build_optimizer(
    params: Iterable[torch.nn.Parameter] | Iterable[dict[str, Any]], cfg: OptimConfig
) -> torch.optim.Optimizer:
    """SGD or AdamW over ``params``: parameters (all at ``cfg.lr``) or parameter groups (dicts with
    ``params`` and their own ``lr``). Frozen parameters and groups left empty are dropped."""
    items = list(params)
    groups = items if items and isinstance(items[0], dict) else [{"params": items}]
    groups = [{**g, "params": [p for p in g["params"] if p.requires_grad]} for g in groups]
    params = [g for g in groups if g["params"]]
    if not params:
        raise ValueError("no trainable parameters to optimize")
    if cfg.name == "sgd":
        return torch.optim.SGD(
            params, lr=cfg.lr, momentum=cfg.momentum, nesterov=cfg.nesterov, weight_decay=cfg.weight_decay
        )
    return torch.optim.AdamW(params, lr=cfg.lr, betas=cfg.betas, weight_decay=cfg.weight_decay)


def lr_factor(step: int, cfg: ScheduleConfig, max_steps: int) -> float:
    """Multiplier of the base lr at ``step`` (0-based): linear warm-up, then the schedule.

    The schedule's progress t runs from 0 at the end of warm-up to 1 at ``max_steps``.
    """
    if cfg.warmup_steps and step < cfg.warmup_steps:
        return cfg.warmup_start_factor + (1 - cfg.warmup_start_factor) * step / cfg.warmup_steps
    span = max(1, max_steps - cfg.warmup_steps)
    t = min(1.0, (step - cfg.warmup_steps) / span)
    if cfg.name == "cosine":
        return cfg.min_lr_factor + (1 - cfg.min_lr_factor) * 0.5 * (1 + math.cos(math.pi * t))
    if cfg.name == "poly":
        return (1 - t) ** cfg.power
    if cfg.name == "exponential":
        return cfg.gamma ** ((step - cfg.warmup_steps) // cfg.gamma_every)
    return 1.0


def build_scheduler(
    optimizer: torch.optim.Optimizer, cfg: ScheduleConfig, max_steps: int
) -> torch.optim.lr_scheduler.LambdaLR:
    return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: lr_factor(s, cfg, max_steps))
