"""Learning-rate schedules against hand-computed values."""

from __future__ import annotations

import math

import pytest
import torch

from pixvox.config.common import OptimConfig, ScheduleConfig
from pixvox.engine.optim import build_optimizer, build_scheduler, lr_factor


def test_warmup_then_cosine_hand_values():
    cfg = ScheduleConfig(name="cosine", warmup_steps=10, warmup_start_factor=0.1, min_lr_factor=0.0)
    assert lr_factor(0, cfg, 110) == pytest.approx(0.1)
    assert lr_factor(5, cfg, 110) == pytest.approx(0.1 + 0.9 * 0.5)
    assert lr_factor(10, cfg, 110) == pytest.approx(1.0)
    assert lr_factor(60, cfg, 110) == pytest.approx(0.5)  # half way: cos(pi/2) = 0
    assert lr_factor(110, cfg, 110) == pytest.approx(0.0, abs=1e-12)


def test_poly_exponential_constant():
    assert lr_factor(50, ScheduleConfig(name="poly", power=2.0), 100) == pytest.approx(0.25)
    assert lr_factor(
        250, ScheduleConfig(name="exponential", gamma=0.5, gamma_every=100), 1000
    ) == pytest.approx(0.25)
    assert lr_factor(7, ScheduleConfig(name="constant"), 10) == 1.0


def test_scheduler_drives_optimizer_lr():
    p = torch.nn.Parameter(torch.zeros(3))
    opt = build_optimizer([p], OptimConfig(name="sgd", lr=2.0))
    sched = build_scheduler(opt, ScheduleConfig(name="cosine", warmup_steps=0), max_steps=4)
    seen = []
    for _ in range(4):
        seen.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    assert seen == pytest.approx([2.0 * 0.5 * (1 + math.cos(math.pi * t / 4)) for t in range(4)])


def test_optimizer_refuses_nothing_to_train():
    with pytest.raises(ValueError, match="no trainable"):
        build_optimizer([torch.nn.Parameter(torch.zeros(1), requires_grad=False)], OptimConfig())
    assert isinstance(
        build_optimizer([torch.nn.Parameter(torch.zeros(1))], OptimConfig(name="adamw")), torch.optim.AdamW
    )


def test_parameter_groups_keep_their_own_lr_under_the_schedule():
    # Two groups (lr 2 and 0.5), plain SGD, gradient 1: each step moves a group by its lr times the
    # schedule's factor, hand-computed; a frozen parameter is dropped from its group.
    a, b = torch.nn.Parameter(torch.zeros(2)), torch.nn.Parameter(torch.zeros(3))
    frozen = torch.nn.Parameter(torch.zeros(1), requires_grad=False)
    cfg = OptimConfig(name="sgd", lr=2.0, momentum=0.0, weight_decay=0.0)
    opt = build_optimizer([{"params": [a], "lr": 2.0}, {"params": [b, frozen], "lr": 0.5}], cfg)
    assert [len(g["params"]) for g in opt.param_groups] == [1, 1]
    sched = build_scheduler(opt, ScheduleConfig(name="poly", power=1.0), max_steps=4)
    for _ in range(2):
        a.grad, b.grad = torch.ones(2), torch.ones(3)
        opt.step()
        sched.step()
    assert a.detach().tolist() == pytest.approx([-(2.0 * 1.0 + 2.0 * 0.75)] * 2)
    assert b.detach().tolist() == pytest.approx([-(0.5 * 1.0 + 0.5 * 0.75)] * 3)
