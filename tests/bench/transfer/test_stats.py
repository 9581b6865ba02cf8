"""t-intervals against scipy.stats' own t-tests."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from pixvox.bench.transfer.stats import paired_difference, t_interval


@pytest.mark.parametrize("n", [2, 3, 5, 12])
def test_t_interval_equals_scipy_one_sample(n):
    x = np.random.default_rng(n).normal(0.3, 0.1, n)
    got = t_interval(x)
    ci = stats.ttest_1samp(x, 0.0).confidence_interval(0.95)
    assert got.mean == pytest.approx(x.mean())
    assert (got.low, got.high) == pytest.approx((ci.low, ci.high), rel=1e-10)


def test_paired_difference_equals_scipy_related_test_on_common_seeds():
    rng = np.random.default_rng(7)
    a = {s: float(v) for s, v in enumerate(rng.normal(0.5, 0.05, 6))}
    b = {s: float(v) for s, v in enumerate(rng.normal(0.45, 0.05, 6))}
    b.pop(5)  # a seed missing from one arm is left out of the pairing
    got, keys = paired_difference(a, b)
    assert keys == [0, 1, 2, 3, 4]
    xa, xb = np.array([a[k] for k in keys]), np.array([b[k] for k in keys])
    ci = stats.ttest_rel(xa, xb).confidence_interval(0.95)
    assert (got.low, got.high) == pytest.approx((ci.low, ci.high), rel=1e-10)
    assert got.excludes_zero == (ci.low > 0 or ci.high < 0)


def test_one_value_has_no_interval():
    got = t_interval([0.4])
    assert got.mean == 0.4 and math.isnan(got.low) and not got.excludes_zero
