"""pixvox.bench.transfer.compare and tools/transfer_compare.py: a run reproduces a reference when each
stated quantity's new mean lies inside the reference's 95% t-interval (hand-computed here)."""

from __future__ import annotations

import copy
import importlib.util
import json
import math
from pathlib import Path

import numpy as np
import pytest

from pixvox.bench.transfer.compare import compare, miss_probability
from pixvox.bench.transfer.stats import Interval, welch_difference

REPO = Path(__file__).resolve().parents[3]
TOOL = REPO / "tools" / "transfer_compare.py"
T_975_2 = 4.302652729749464  # Student t, 97.5% quantile, 2 degrees of freedom (tables)


def _result(ppkt: list[float], seeds=(0, 1, 2)) -> dict:
    """Three arms on one test room, one fine-tuning budget, retrieval for two arms."""
    values = {"ppkt": ppkt, "random": [0.10, 0.11, 0.09], "random_teacher": [0.08, 0.10, 0.09]}
    probe = [
        {"arm": a, "seed": s, "test_room": "r", "miou": v[i]}
        for a, v in values.items()
        for i, s in enumerate(seeds)
    ]
    finetune = [
        {
            "init": init,
            "budget": 20,
            "seed": s,
            "miou": 0.07 + 0.01 * s + off * (1 + s % 2),
            "curve": [[50, 0.0], [100, 0.0]],
        }
        for init, off in (("scratch", 0.0), ("ppkt", 0.004))
        for s in seeds
    ]
    retrieval = [
        {"arm": a, "seed": s, "top1": t + 0.001 * s, "chance": 0.001}
        for a, t in (("ppkt", 0.008), ("random_teacher", 0.002))
        for s in seeds
    ]
    return {"probe": probe, "finetune": finetune, "retrieval": retrieval, "config": {"steps": 300}}


def _check(result: dict, name: str) -> dict:
    return next(c for c in result["checks"] if c["quantity"] == name)


def test_probe_interval_is_the_hand_computed_t_interval_and_bounds_the_new_mean():
    ref = _result([0.10, 0.12, 0.14])  # mean 0.12, sd 0.02
    half = T_975_2 * 0.02 / math.sqrt(3)  # 0.049683
    inside = compare(ref, _result([0.16, 0.16, 0.17]))  # mean 0.1633 < 0.1697
    c = _check(inside, "probe ppkt")
    assert (c["ref_low"], c["ref_high"]) == pytest.approx((0.12 - half, 0.12 + half), abs=1e-10)
    assert c["within"] and c["new_mean"] == pytest.approx(0.49 / 3)
    outside = compare(ref, _result([0.16, 0.17, 0.18]))  # mean 0.17 > 0.1697
    assert not _check(outside, "probe ppkt")["within"]
    assert not outside["reproduced"]
    # the other arms are untouched, so their checks still hold
    assert _check(outside, "probe random")["within"]


def test_welch_interval_is_the_hand_computed_one():
    # equal sds (0.02) over 3 values each: se = sqrt(2 * 4e-4 / 3), df = 2 * (3 - 1) = 4
    diff, low, high, df = welch_difference(Interval(0.15, 0, 0, 3, 0.02), Interval(0.12, 0, 0, 3, 0.02))
    se, t4 = math.sqrt(8e-4 / 3), 2.7764451051977987  # Student t, 97.5% quantile, 4 df (tables)
    assert (diff, df) == pytest.approx((0.03, 4.0))
    assert (low, high) == pytest.approx((0.03 - t4 * se, 0.03 + t4 * se), abs=1e-10)
    # sds 0.02 and 0.01: df = (5e-4/3)^2 / ((4e-4/3)^2/2 + (1e-4/3)^2/2) = 50/17, between 2 and 3,
    # so the half-width lies between the 3-df and the 2-df quantile times the se
    diff, low, high, df = welch_difference(Interval(0.15, 0, 0, 3, 0.02), Interval(0.12, 0, 0, 3, 0.01))
    assert df == pytest.approx(50 / 17)
    se = math.sqrt(5e-4 / 3)
    assert 3.182446305284263 * se < high - diff < T_975_2 * se
    assert diff - low == pytest.approx(high - diff)
    # no spread on either side: the difference is its own interval
    assert welch_difference(Interval(0.1, 0, 0, 3, 0.0), Interval(0.1, 0, 0, 3, 0.0))[1:3] == (0.0, 0.0)


def test_miss_probability_matches_a_simulation():
    """A rerun from the reference's own distribution falls outside its interval at the stated rate:
    checked against 200 000 simulated pairs of 3-seed runs (seeded)."""
    rng = np.random.default_rng(0)
    ref, new = rng.normal(size=(200_000, 3)), rng.normal(size=(200_000, 3))
    half = T_975_2 * ref.std(axis=1, ddof=1) / math.sqrt(3)
    missed = np.abs(new.mean(axis=1) - ref.mean(axis=1)) > half
    assert miss_probability(3) == pytest.approx(missed.mean(), abs=0.003)
    assert 0.09 < miss_probability(3) < 0.097


def test_identical_runs_reproduce_and_every_row_matches():
    ref = _result([0.10, 0.12, 0.14])
    got = compare(ref, copy.deepcopy(ref))
    assert got["reproduced"] and got["consistent"] and got["config_differences"] == []
    assert len(got["checks"]) == got["stated_quantities"] > 0
    for m in got["rows"]:
        assert m["identical"] == m["common"] > 0 and m["max_abs_diff"] == 0


def test_a_changed_row_is_counted_and_its_difference_reported():
    ref = _result([0.10, 0.12, 0.14])
    new = _result([0.10, 0.12, 0.15])
    probe = next(m for m in compare(ref, new)["rows"] if m["table"] == "probe")
    assert (probe["common"], probe["identical"]) == (9, 8)
    assert probe["max_abs_diff"] == pytest.approx(0.01)


def test_a_different_config_or_a_missing_arm_is_not_a_reproduction():
    ref = _result([0.10, 0.12, 0.14])
    other = copy.deepcopy(ref)
    other["config"]["steps"] = 1000
    got = compare(ref, other)
    assert got["config_differences"] == ["steps"] and not got["reproduced"]
    fewer = copy.deepcopy(ref)
    fewer["probe"] = [r for r in fewer["probe"] if r["arm"] != "random_teacher"]
    got = compare(ref, fewer)
    assert len(got["checks"]) < got["stated_quantities"] and not got["reproduced"]


def _tool():
    spec = importlib.util.spec_from_file_location("transfer_compare_tool", TOOL)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_tool_on_the_committed_report_and_a_shifted_copy(tmp_path, capsys):
    docs = REPO / "docs" / "transfer.json"
    ref = json.loads(docs.read_text())
    assert _tool().main([str(docs), str(docs), "--json", str(tmp_path / "c.json")]) == 0
    written = json.loads((tmp_path / "c.json").read_text())
    assert written["reproduced"] and written["stated_quantities"] >= 20
    # +5 mIoU points on every ppkt probe row moves its mean far outside the stated interval
    shifted = copy.deepcopy(ref)
    for r in shifted["probe"]:
        if r["arm"] == "ppkt":
            r["miou"] += 0.05
    (tmp_path / "s.json").write_text(json.dumps(shifted))
    capsys.readouterr()
    assert _tool().main([str(docs), str(tmp_path / "s.json")]) == 1
    out = capsys.readouterr().out
    assert "NOT reproduced" in out
    line = next(x for x in out.splitlines() if x.startswith("probe ppkt "))
    assert " NO " in line and line.endswith("excludes 0")
    # the two runs' difference (+5.00 points, per-seed sd unchanged) is far outside Welch's interval
    assert _tool().main([str(docs), str(tmp_path / "s.json"), "--criterion", "two-sample"]) == 1


def test_tool_names_a_bad_file(tmp_path, capsys):
    bad = tmp_path / "broken.json"
    bad.write_text("{not json")
    docs = REPO / "docs" / "transfer.json"
    assert _tool().main([str(docs), str(bad)]) == 2
    assert str(bad) in capsys.readouterr().err
    assert _tool().main([str(docs), str(tmp_path / "absent.json")]) == 2
    assert "absent.json: no such file" in capsys.readouterr().err
