"""Recorded reruns of the transfer benchmark, listed under "Reproducing" in docs/transfer.md.

A record is the JSON that ``tools/transfer_compare.py REF NEW --json
docs/bench_results/transfer_reproduction_<date>.json --label TEXT`` writes
(:func:`pixvox.bench.transfer.compare.compare` plus the label and file names). They are read
here without recomputing anything, so the report shows each comparison as it was made.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

PATTERN = "transfer_reproduction_*.json"


def load_records(docs: Path) -> list[dict[str, Any]]:
    """Every record under ``docs/bench_results`` (file name order); a file that is not a comparison
    is an error naming it."""
    out = []
    for path in sorted((docs / "bench_results").glob(PATTERN)):
        data = json.loads(path.read_text())
        if not isinstance(data, dict) or "checks" not in data or "rows" not in data:
            raise ValueError(f"{path}: not a tools/transfer_compare.py --json record (no checks/rows)")
        out.append({**data, "file": path.name})
    return out


def _pts(x: float) -> str:
    return f"{100 * x:.2f}"


def record_line(r: dict[str, Any]) -> str:
    """One record as a markdown list item: both criteria, raw rows, time, and what fell outside."""
    checks, total = r["checks"], r["stated_quantities"]
    n_in = sum(c["within"] for c in checks)
    n_ok = sum(c["consistent"] for c in checks)
    common = sum(m["common"] for m in r["rows"])
    same = sum(m["identical"] for m in r["rows"])
    worst = max((m["max_abs_diff"] for m in r["rows"]), default=0.0)
    new = r.get("candidate") or {}
    m = new.get("machine") or {}
    when = f"{new.get('wall_seconds', float('nan')) / 60:.1f} min wall"
    if "cpu_seconds" in m:
        when += f", {m['cpu_seconds'] / 60:.1f} CPU-min"
    outside = [
        f"{c['quantity']} {_pts(c['new_mean'])} against [{_pts(c['ref_low'])}, {_pts(c['ref_high'])}]"
        for c in checks
        if not c["within"]
    ]
    text = (
        f"  - {r.get('label') or r['file']}: strict {n_in}/{total} new means inside the reference's "
        f"interval (a rerun from the reference's own distribution misses {r['expected_misses']:.1f} on "
        f"average); two-sample {n_ok}/{total} differences with a Welch 95% interval containing 0; "
        f"{same}/{common} raw rows identical (largest difference {_pts(worst)} points); {when}."
    )
    if outside:
        text += " Outside: " + "; ".join(outside) + "."
    if r.get("config_differences"):
        text += " Config differs in: " + ", ".join(r["config_differences"]) + "."
    return text + f" (`docs/bench_results/{r['file']}`)"


def section(records: list[dict[str, Any]]) -> list[str]:
    """The lines listing ``records`` (none when there are none)."""
    if not records:
        return []
    return [
        "- Recorded reruns (`python tools/transfer_compare.py`, percent points):",
        *map(record_line, records),
    ]
