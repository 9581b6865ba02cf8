"""The comparison that decides PASS/FAIL, and the printed table."""

from __future__ import annotations

import json
import math

import torch

from pixvox.selftest.report import FAIL, PASS, SKIP, CheckResult, compare, format_table, judge


def test_compare_passes_within_tolerance_and_fails_beyond(seed):
    g = torch.Generator().manual_seed(seed)
    ref = torch.randn(50, 4, generator=g, dtype=torch.float64)
    assert compare("same", ref.float(), ref, 1e-6, 1e-6).ok
    off = ref.clone()
    off[7, 2] += 1e-3
    c = compare("one entry off", off, ref, 1e-6, 1e-6)
    assert not c.ok and math.isclose(c.max_abs_error, 1e-3, rel_tol=1e-9) and c.worst_ratio > 100


def test_compare_catches_nan_shape_and_integer_differences():
    ref = torch.tensor([1.0, math.nan, 3.0])
    assert compare("nan where nan", ref.clone(), ref, 0, 0).ok
    assert not compare("nan moved", torch.tensor([math.nan, 2.0, 3.0]), ref, 1, 1).ok
    assert not compare("all nan", torch.full((3,), math.nan), torch.ones(3), 1, 1).ok
    assert not compare("shape", torch.zeros(2, 3), torch.zeros(3, 2), 1, 1).ok
    rows = torch.arange(10)
    assert compare("rows", rows.clone(), rows, 0, 0).ok
    wrong = rows.clone()
    wrong[3] = -1
    c = compare("rows", wrong, rows, 0, 0)
    assert not c.ok and "1 of 10" in c.detail


def test_judge_fails_when_any_comparison_fails_and_names_it():
    ok = compare("a", torch.ones(3), torch.ones(3), 0, 0)
    bad = compare("b", torch.ones(3) * 2, torch.ones(3), 0, 0)
    assert judge("x", "cpu", [ok], "exact").result == PASS
    r = judge("x", "cpu", [ok, bad], "exact")
    assert r.result == FAIL and "b: max |error| 1.00e+00" in r.detail


def test_table_lists_every_row_and_explains_the_ones_not_passed():
    rows = [
        CheckResult("versions", "cpu", PASS, "torch 2.13", 0.01),
        CheckResult("ops.gather", "cuda:0", FAIL, "max err 1e-1", 1.5, detail="features: max |error| 0.1"),
        CheckResult("bench.sparse", "cpu", SKIP, "", 0.0, detail="skipped: module not present"),
    ]
    text = format_table(rows)
    lines = text.splitlines()
    assert lines[0].split() == ["check", "device", "result", "figure", "time"]
    assert any(line.startswith("ops.gather") and "FAIL" in line and "1.5 s" in line for line in lines)
    assert "ops.gather (cuda:0): features: max |error| 0.1" in text
    assert "bench.sparse (cpu): skipped: module not present" in text
    # JSON-safe even with non-finite figures
    r = CheckResult("x", "cpu", FAIL, data={"err": math.inf, "nested": [math.nan]})
    assert json.loads(json.dumps(r.to_json(), allow_nan=False))["data"] == {"err": "inf", "nested": ["nan"]}
