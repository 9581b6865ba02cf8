"""pixvox.bench.transfer.reproductions: recorded reruns listed in docs/transfer.md, counted from the
comparison's own checks (a run against itself, and against a copy with one arm shifted)."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from pixvox.bench.transfer.compare import compare
from pixvox.bench.transfer.reproductions import load_records, record_line, section

REPO = Path(__file__).resolve().parents[3]
REPORT = REPO / "docs" / "transfer.json"


def _write(docs: Path, name: str, record: dict) -> None:
    (docs / "bench_results").mkdir(parents=True, exist_ok=True)
    (docs / "bench_results" / name).write_text(json.dumps(record))


def test_a_run_against_itself_and_a_shifted_copy(tmp_path):
    ref = json.loads(REPORT.read_text())
    same = compare(ref, copy.deepcopy(ref))
    total = same["stated_quantities"]
    rows = sum(m["common"] for m in same["rows"])
    shifted = copy.deepcopy(ref)
    for r in shifted["probe"]:
        if r["arm"] == "ppkt":
            r["miou"] += 0.05  # +5 points on every ppkt probe row
    moved = compare(ref, shifted)
    _write(tmp_path, "transfer_reproduction_a.json", {**same, "label": "itself"})
    _write(tmp_path, "transfer_reproduction_b.json", {**moved, "label": "shifted"})
    (tmp_path / "bench_results" / "other.json").write_text("{}")  # not a record: not listed
    records = load_records(tmp_path)
    assert [r["label"] for r in records] == ["itself", "shifted"]
    first, second = record_line(records[0]), record_line(records[1])
    assert f"strict {total}/{total} " in first and f"two-sample {total}/{total} " in first
    assert f"{rows}/{rows} raw rows identical (largest difference 0.00 points)" in first
    assert "Outside" not in first
    # ppkt itself and its differences with the other arms move; the other arms' rows do not
    outside = [c["quantity"] for c in moved["checks"] if not c["within"]]
    assert "probe ppkt" in outside and "probe random" not in outside
    assert f"strict {total - len(outside)}/{total} " in second
    assert "largest difference 5.00 points" in second
    assert "Outside: probe ppkt " in second
    lines = section(records)
    assert len(lines) == 3 and lines[0].startswith("- Recorded reruns")
    assert section([]) == []


def test_a_file_that_is_not_a_record_is_named(tmp_path):
    _write(tmp_path, "transfer_reproduction_bad.json", {"probe": []})
    with pytest.raises(ValueError, match="transfer_reproduction_bad.json: not a tools/transfer_compare.py"):
        load_records(tmp_path)
