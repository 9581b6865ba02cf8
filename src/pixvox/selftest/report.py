"""Results of the self-test: one :class:`CheckResult` per check and device, the comparison that
decides PASS or FAIL, the printed table and the JSON report."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

import torch

PASS, FAIL, SKIP = "PASS", "FAIL", "SKIP"
FORMAT = "pixvox.selftest"
VERSION = 1


@dataclass
class CheckResult:
    """One row of the table.

    Attributes:
        name: check name, e.g. ``sparse_conv`` or ``ops.scatter_mean``.
        device: ``cpu``, ``cuda:0``, ``cuda x2``.
        result: :data:`PASS`, :data:`FAIL` or :data:`SKIP`.
        figure: the one number worth reading (error against the reference, loss drop, step time).
        seconds: wall time of the check.
        detail: why it failed or was skipped, or what was compared.
        data: machine-readable figures for the JSON report.
    """

    name: str
    device: str
    result: str
    figure: str = ""
    seconds: float = 0.0
    detail: str = ""
    data: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return _json_safe(asdict(self))


@dataclass
class Comparison:
    """A computed tensor against its reference: ``ok`` when ``|got - ref| <= atol + rtol |ref|``."""

    what: str
    ok: bool
    max_abs_error: float
    #: the largest ``|got - ref| / (atol + rtol |ref|)``: <= 1 passes
    worst_ratio: float
    detail: str = ""

    def describe(self) -> str:
        return f"{self.what}: max |error| {self.max_abs_error:.2e}" + (
            f" ({self.detail})" if self.detail else ""
        )


def compare(what: str, got: torch.Tensor, ref: torch.Tensor, rtol: float, atol: float) -> Comparison:
    """Compare ``got`` (any device, any float dtype) with ``ref`` in float64 on the CPU.

    Shapes must agree; NaNs must sit at the same places (a NaN where the reference has a number
    fails). Integer tensors are compared exactly.
    """
    got_c, ref_c = got.detach().cpu(), ref.detach().cpu()
    if tuple(got_c.shape) != tuple(ref_c.shape):
        return Comparison(
            what, False, math.inf, math.inf, f"shape {tuple(got_c.shape)} != reference {tuple(ref_c.shape)}"
        )
    if not (got_c.is_floating_point() or ref_c.is_floating_point()):
        wrong = int((got_c.long() != ref_c.long()).sum())
        return Comparison(
            what,
            wrong == 0,
            0.0 if wrong == 0 else math.inf,
            0.0 if wrong == 0 else math.inf,
            f"{wrong} of {got_c.numel()} entries differ" if wrong else "",
        )
    g, r = got_c.double(), ref_c.double()
    nan_g, nan_r = torch.isnan(g), torch.isnan(r)
    nan_mismatch = int((nan_g != nan_r).sum())
    both = ~(nan_g | nan_r)
    err = (g - r).abs()[both]
    bound = (atol + rtol * r.abs())[both]
    max_abs = float(err.max()) if err.numel() else 0.0
    # err / bound, with 0/0 = 0 (exact comparisons: atol = rtol = 0) and x/0 = inf
    ratios = torch.where(err <= bound, err / bound.clamp_min(1e-300), torch.full_like(err, math.inf))
    ratio = float(ratios.max()) if err.numel() else 0.0
    if math.isnan(max_abs):
        ratio = max_abs = math.inf
    ok = nan_mismatch == 0 and ratio <= 1.0
    detail = f"{nan_mismatch} NaN positions differ" if nan_mismatch else ""
    return Comparison(what, ok, max_abs, ratio, detail)


def judge(name: str, device: str, comparisons: list[Comparison], tol_text: str) -> CheckResult:
    """PASS when every comparison is within tolerance; the figure is the worst absolute error."""
    bad = [c for c in comparisons if not c.ok]
    worst = max((c.max_abs_error for c in comparisons), default=0.0)
    data = {
        "comparisons": [
            {"what": c.what, "ok": c.ok, "max_abs_error": c.max_abs_error, "worst_ratio": c.worst_ratio}
            for c in comparisons
        ]
    }
    figure = f"max err {worst:.1e} ({len(comparisons)} cmp, {tol_text})"
    if bad:
        return CheckResult(
            name, device, FAIL, figure, detail="; ".join(c.describe() for c in bad[:4]), data=data
        )
    return CheckResult(name, device, PASS, figure, data=data)


def _json_safe(obj: Any) -> Any:
    """Replace NaN/inf (not JSON) by strings, recursively."""
    if isinstance(obj, float) and not math.isfinite(obj):
        return str(obj)
    if isinstance(obj, dict):
        return {str(k): _json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_json_safe(v) for v in obj]
    return obj


def format_table(results: list[CheckResult]) -> str:
    """The results as an aligned text table (check, device, result, figure, time)."""
    header = ("check", "device", "result", "figure", "time")
    rows = [(r.name, r.device, r.result, r.figure, f"{r.seconds:.1f} s") for r in results]
    widths = [max(len(h), *(len(row[i]) for row in rows)) if rows else len(h) for i, h in enumerate(header)]
    line = "  ".join("-" * w for w in widths)
    out = ["  ".join(h.ljust(w) for h, w in zip(header, widths)), line]
    out += ["  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip() for row in rows]
    notes = [f"  {r.name} ({r.device}): {r.detail}" for r in results if r.result != PASS and r.detail]
    if notes:
        out += ["", "Not passed:", *notes]
    return "\n".join(out)


def summary_counts(results: list[CheckResult]) -> dict[str, int]:
    return {k: sum(r.result == k for r in results) for k in (PASS, FAIL, SKIP)}
