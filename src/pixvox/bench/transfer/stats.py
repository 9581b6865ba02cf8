"""Means and paired differences over seeds with Student-t 95% intervals."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import stats

CONFIDENCE = 0.95


@dataclass(frozen=True)
class Interval:
    """``mean`` with its two-sided t-interval ``[low, high]`` over ``n`` values (NaN bounds for n < 2)."""

    mean: float
    low: float
    high: float
    n: int
    sd: float

    @property
    def excludes_zero(self) -> bool:
        """Whether the interval lies entirely above or below 0 (False when it is undefined)."""
        return bool(self.low > 0 or self.high < 0)

    def to_json(self) -> dict[str, float | int | None]:
        def num(v: float) -> float | None:
            return None if not math.isfinite(v) else round(v, 6)

        return {
            "mean": num(self.mean),
            "low": num(self.low),
            "high": num(self.high),
            "n": self.n,
            "sd": num(self.sd),
        }

    def describe(self, scale: float = 100.0, unit: str = "", digits: int = 1) -> str:
        """``+1.2 [−0.3, +2.7]`` (values × ``scale``)."""
        f = f"+.{digits}f"
        if self.n < 2:
            return f"{self.mean * scale:{f}}{unit} (n={self.n}, no interval)"
        return f"{self.mean * scale:{f}}{unit} [{self.low * scale:{f}}, {self.high * scale:{f}}]"


def t_interval(values: Sequence[float], confidence: float = CONFIDENCE) -> Interval:
    """Mean of ``values`` and its t-interval: ``mean ± t_{(1+conf)/2, n−1} · sd / √n``."""
    x = np.asarray(list(values), np.float64)
    n = int(x.size)
    if n == 0:
        return Interval(float("nan"), float("nan"), float("nan"), 0, float("nan"))
    mean = float(x.mean())
    if n < 2:
        return Interval(mean, float("nan"), float("nan"), n, float("nan"))
    sd = float(x.std(ddof=1))
    half = float(stats.t.ppf(0.5 + confidence / 2, n - 1)) * sd / math.sqrt(n)
    return Interval(mean, mean - half, mean + half, n, sd)


def welch_difference(
    a: Interval, b: Interval, confidence: float = CONFIDENCE
) -> tuple[float, float, float, float]:
    """``a.mean − b.mean`` for two independent samples summarized by their means, sds and sizes, with
    Welch's t-interval: ``(difference, low, high, degrees of freedom)``. Both sds zero: the
    difference with itself as both bounds (and infinite df); either n < 2: NaN bounds."""
    diff = a.mean - b.mean
    if a.n < 2 or b.n < 2:
        return diff, float("nan"), float("nan"), float("nan")
    va, vb = a.sd**2 / a.n, b.sd**2 / b.n
    if va + vb == 0.0:
        return diff, diff, diff, float("inf")
    df = (va + vb) ** 2 / (va**2 / (a.n - 1) + vb**2 / (b.n - 1))
    half = float(stats.t.ppf(0.5 + confidence / 2, df)) * math.sqrt(va + vb)
    return diff, diff - half, diff + half, df


def paired_difference(
    a: Mapping[int, float], b: Mapping[int, float], confidence: float = CONFIDENCE
) -> tuple[Interval, list[int]]:
    """``a − b`` paired on their common keys (seeds): the interval and the keys used (sorted)."""
    keys = sorted(set(a) & set(b))
    return t_interval([a[k] - b[k] for k in keys], confidence), keys


def per_seed(rows: Sequence[dict], key: str, value: str = "miou", **match: Any) -> dict[int, float]:
    """``{seed: mean of value}`` over the rows matching ``match`` (e.g. the test rooms of one arm)."""
    acc: dict[int, list[float]] = {}
    for r in rows:
        if all(r.get(k) == v for k, v in match.items()):
            acc.setdefault(int(r["seed"]), []).append(float(r[value]))
    return {s: sum(v) / len(v) for s, v in sorted(acc.items())}
