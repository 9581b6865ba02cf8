"""Does a new run of the transfer benchmark reproduce a reference docs/transfer.json?

Issue 11's done-when: from a fresh clone, ``python tools/transfer_bench.py`` reproduces
docs/transfer.json *within the stated intervals*. Each quantity the report states with a 95%
interval (probe mIoU per arm, paired differences, fine-tuning per budget, retrieval top-1) is
recomputed from both files' raw rows with :func:`.report.summarize`; the strict check is that the
candidate's mean lies inside the reference's interval. Raw rows are also matched one by one, so
that a bit-for-bit reproduction (same code, same data, same machine, one thread per run) is
reported as such.

The strict check is not a test at 5%: a rerun drawn from exactly the same distribution as the
reference (another machine whose floating point rounds differently, so the seeds' runs diverge)
lands outside the reference's interval with probability :func:`miss_probability` (9.3% per
quantity with 3 seeds). Each quantity therefore also gets the two-sample view: the difference of
the two runs' means with Welch's 95% interval; "consistent" when it contains 0.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from typing import Any

from scipy import stats

from pixvox.bench.transfer.report import summarize
from pixvox.bench.transfer.stats import CONFIDENCE, Interval, welch_difference

#: config fields that must agree for the comparison to mean anything (paths, arms, seeds, budgets)
SAME_CONFIG = (
    "pretrain_data",
    "train_rooms",
    "test_rooms",
    "arms",
    "seeds",
    "steps",
    "finetune_budgets",
    "finetune_seeds",
    "finetune_steps",
    "probe_rows",
    "overrides",
)


def miss_probability(n: int, confidence: float = CONFIDENCE) -> float:
    """Probability that the mean of ``n`` new values falls outside the ``confidence`` t-interval of
    ``n`` reference values when both samples come from one normal distribution.

    The new mean minus the reference mean is ``N(0, 2σ²/n)`` and independent of the reference's
    ``s``, so it lies outside ``± t·s/√n`` exactly when ``|T_{n−1}| > t/√2``."""
    t = float(stats.t.ppf(0.5 + confidence / 2, n - 1))
    return float(2 * stats.t.sf(t / math.sqrt(2), n - 1))


@dataclass(frozen=True)
class Check:
    """One stated quantity (fractions): the reference's mean and interval, the candidate's mean, and
    the candidate minus the reference with Welch's interval."""

    quantity: str
    ref_mean: float
    ref_low: float
    ref_high: float
    new_mean: float
    n: int  #: seeds in the reference
    diff_low: float
    diff_high: float

    @property
    def within(self) -> bool:
        """Candidate mean inside the reference's closed interval (False when either is undefined)."""
        return bool(self.ref_low <= self.new_mean <= self.ref_high)

    @property
    def consistent(self) -> bool:
        """Welch's interval of the difference contains 0 (False when it is undefined)."""
        return bool(self.diff_low <= 0.0 <= self.diff_high)


@dataclass(frozen=True)
class RowMatch:
    """Raw rows (probe, fine-tune, retrieval) present in both runs, and how many are identical."""

    table: str
    common: int
    identical: int
    max_abs_diff: float
    only_reference: int
    only_candidate: int


def _intervals(s: dict[str, Any]) -> Iterator[tuple[str, Interval]]:
    for arm, i in s["probe"].items():
        yield f"probe {arm}", i
    for name, i in s["diff"].items():
        yield f"probe {name}", i
    for budget, f in s["finetune"].items():
        for k in ("scratch", "ppkt", "gain"):
            yield f"finetune {budget} pts {k}", f[k]
    for arm, (top1, _chance) in s["retrieval"].items():
        yield f"retrieval {arm} top1", top1
    if "retrieval_diff" in s:
        yield "retrieval ppkt - random_teacher top1", s["retrieval_diff"]


def config_differences(reference: dict[str, Any], candidate: dict[str, Any]) -> list[str]:
    """The :data:`SAME_CONFIG` keys whose values differ between the two runs' ``config``."""
    a, b = reference.get("config", {}), candidate.get("config", {})
    return [k for k in SAME_CONFIG if a.get(k) != b.get(k)]


def _stated(result: dict[str, Any]) -> list[tuple[str, Interval]]:
    """The quantities ``result`` states with a defined interval (at least 2 seeds), in report order."""
    return [(name, i) for name, i in _intervals(summarize(result)) if i.n >= 2 and math.isfinite(i.low)]


def interval_checks(reference: dict[str, Any], candidate: dict[str, Any]) -> list[Check]:
    """Every interval quantity of ``reference`` that ``candidate`` also has, in report order."""
    return _checks(_stated(reference), candidate)


def _checks(stated: list[tuple[str, Interval]], candidate: dict[str, Any]) -> list[Check]:
    new = dict(_intervals(summarize(candidate)))
    out = []
    for name, ref in stated:
        if name in new:
            _, low, high, _ = welch_difference(new[name], ref)
            out.append(Check(name, ref.mean, ref.low, ref.high, new[name].mean, ref.n, low, high))
    return out


_KEYS = {
    "probe": (("arm", "seed", "test_room"), "miou"),
    "finetune": (("init", "budget", "seed"), "miou"),
    "retrieval": (("arm", "seed"), "top1"),
}


def row_matches(reference: dict[str, Any], candidate: dict[str, Any]) -> list[RowMatch]:
    """Per table: rows matched by key (e.g. arm, seed, test room) and their value differences."""
    out = []
    for table, (keys, value) in _KEYS.items():
        ref = {tuple(r[k] for k in keys): float(r[value]) for r in reference.get(table, [])}
        new = {tuple(r[k] for k in keys): float(r[value]) for r in candidate.get(table, [])}
        common = sorted(set(ref) & set(new), key=str)
        diffs = [abs(ref[k] - new[k]) for k in common]
        out.append(
            RowMatch(
                table,
                len(common),
                sum(d == 0.0 for d in diffs),
                max(diffs, default=0.0),
                len(set(ref) - set(new)),
                len(set(new) - set(ref)),
            )
        )
    return out


def compare(reference: dict[str, Any], candidate: dict[str, Any]) -> dict[str, Any]:
    """The whole comparison as JSON-ready data. ``reproduced`` (the strict check) is True when every
    candidate mean lies inside the reference's interval, the configs agree, and no stated quantity
    is missing from the candidate; ``consistent`` likewise with Welch's interval of the difference
    containing 0 in place of the strict check. ``expected_misses``: how many strict misses a rerun
    from the reference's own distribution makes on average."""
    ref_stated = _stated(reference)
    checks = _checks(ref_stated, candidate)
    cfg = config_differences(reference, candidate)
    # both criteria also need the configs to agree and every stated quantity to be checked
    complete = bool(checks) and not cfg and len(checks) == len(ref_stated)
    return {
        "reproduced": complete and all(c.within for c in checks),
        "consistent": complete and all(c.consistent for c in checks),
        "config_differences": cfg,
        "stated_quantities": len(ref_stated),
        "expected_misses": round(sum(miss_probability(c.n) for c in checks), 3),
        "checks": [{**asdict(c), "within": c.within, "consistent": c.consistent} for c in checks],
        "rows": [asdict(m) for m in row_matches(reference, candidate)],
        "reference": {k: reference.get(k) for k in ("command", "date", "wall_seconds", "machine")},
        "candidate": {k: candidate.get(k) for k in ("command", "date", "wall_seconds", "machine")},
    }


def table(result: dict[str, Any]) -> str:
    """A plain-text table of the checks (percent points) and the row matches."""
    head = f"{'quantity':<40} {'reference [95%]':>24} {'new':>7}  within  {'new - ref [Welch 95%]':>24}"
    lines = [head]
    for c in result["checks"]:
        ref = f"{100 * c['ref_mean']:+.2f} [{100 * c['ref_low']:+.2f}, {100 * c['ref_high']:+.2f}]"
        d = c["new_mean"] - c["ref_mean"]
        diff = f"{100 * d:+.2f} [{100 * c['diff_low']:+.2f}, {100 * c['diff_high']:+.2f}]"
        lines.append(
            f"{c['quantity']:<40} {ref:>24} {100 * c['new_mean']:+7.2f}  {'yes' if c['within'] else 'NO':<6}"
            f"  {diff:>24}{'' if c['consistent'] else '  excludes 0'}"
        )
    lines.append("")
    for m in result["rows"]:
        lines.append(
            f"{m['table']}: {m['identical']}/{m['common']} rows identical, max |diff| "
            f"{m['max_abs_diff']:.3g}; only in reference {m['only_reference']}, only in new {m['only_candidate']}"
        )
    if result["config_differences"]:
        lines.append("config differs in: " + ", ".join(result["config_differences"]))
    n_in = sum(c["within"] for c in result["checks"])
    n_ok = sum(c["consistent"] for c in result["checks"])
    total = result["stated_quantities"]
    lines.append(
        f"strict: {n_in}/{total} stated quantities within the reference's interval: "
        + ("REPRODUCED" if result["reproduced"] else "NOT reproduced")
        + f" (a rerun from the reference's own distribution misses {result['expected_misses']:.1f} on average)"
    )
    lines.append(
        f"two-sample: {n_ok}/{total} differences with a Welch interval containing 0: "
        + ("consistent" if result["consistent"] else "NOT consistent")
    )
    return "\n".join(lines)
