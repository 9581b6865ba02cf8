"""The rule that decides whether the smoke run's loss is finite and falling."""

from __future__ import annotations

import math

from pixvox.selftest.smoke import judge_losses


def test_a_noisy_but_falling_loss_passes():
    losses = [
        5.0,
        5.3,
        4.9,
        5.1,
        4.8,
        4.7,
        4.9,
        4.4,
        4.6,
        4.2,
        4.4,
        4.0,
        4.3,
        3.9,
        4.1,
        3.8,
        4.0,
        3.7,
        3.9,
        3.6,
    ]
    assert judge_losses(losses, 20) == (True, "")


def test_flat_rising_nonfinite_or_short_runs_fail():
    flat = [4.0] * 20
    ok, why = judge_losses(flat, 20)
    assert not ok and "did not fall" in why
    ok, why = judge_losses([3.0 + 0.05 * i for i in range(20)], 20)
    assert not ok and "did not fall" in why
    nan = [5.0 - 0.1 * i for i in range(20)]
    nan[12] = math.nan
    ok, why = judge_losses(nan, 20)
    assert not ok and "step(s) [13]" in why
    ok, why = judge_losses([5.0 - 0.1 * i for i in range(19)], 20)
    assert not ok and "19 losses" in why
    inf = [5.0 - 0.1 * i for i in range(20)]
    inf[-1] = math.inf
    assert not judge_losses(inf, 20)[0]
