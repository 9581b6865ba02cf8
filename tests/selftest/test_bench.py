"""Benchmark checks: skipped (never passed) where the module is absent; figures from its JSON."""

from __future__ import annotations

import json
import sys
import types

import pytest
import torch

from pixvox.selftest import bench
from pixvox.selftest.report import FAIL, PASS, SKIP
from pixvox.selftest.runner import Check, run_check


@pytest.fixture
def fake_bench(monkeypatch):
    """Install a fake ``pixvox.bench.<name>`` whose ``main(argv)`` does what ``behaviour`` says."""

    def install(name: str, behaviour):
        package = types.ModuleType("pixvox.bench")
        package.__path__ = []
        module = types.ModuleType(f"pixvox.bench.{name}")
        module.main = behaviour
        monkeypatch.setitem(sys.modules, "pixvox.bench", package)
        monkeypatch.setitem(sys.modules, f"pixvox.bench.{name}", module)

    return install


def _json_writer(payload):
    def main(argv):
        path = argv[argv.index("--json") + 1]
        assert "--quick" in argv
        with open(path, "w") as f:
            json.dump(payload, f)

    return main


def test_a_missing_benchmark_module_is_skipped(tmp_path, monkeypatch):
    # Imports fail as for an absent package, also for submodules an earlier test imported already.
    for name in [m for m in sys.modules if m == "pixvox.bench" or m.startswith("pixvox.bench.")]:
        monkeypatch.setitem(sys.modules, name, None)
    monkeypatch.setitem(sys.modules, "pixvox.bench", None)
    for name in bench.BENCHMARKS:
        r = bench.run_benchmark(name, torch.device("cpu"), tmp_path)
        assert r.result == SKIP and "module not present" in r.detail


def test_benchmark_figures_come_from_its_json(tmp_path, fake_bench):
    fake_bench("backproject", _json_writer({"bandwidth_fraction": 0.42, "speedup_vs_reference": 6.5}))
    r = bench.run_benchmark("bench.backproject", torch.device("cpu"), tmp_path)
    assert r.result == PASS and r.figure == "42% of copy bandwidth, 6.5x reference"
    assert r.data["argv"][:3] == ["--quick", "--json", str(tmp_path / "bench.backproject.json")]
    fake_bench(
        "pretrain",
        _json_writer({"step_seconds": 0.25, "frames_per_second": 16.0, "data_wait_fraction": 0.01}),
    )
    r = bench.run_benchmark("bench.pretrain", torch.device("cpu"), tmp_path)
    assert r.result == PASS and r.figure == "0.250 s/step, 16.0 frames/s, data wait 1%"


def test_a_benchmark_that_errors_or_writes_nothing_fails(tmp_path, fake_bench):
    def broken(argv):
        raise RuntimeError("kernel mismatch")

    fake_bench("sparse", broken)
    check = Check(
        "bench.sparse",
        "bench",
        torch.device("cpu"),
        lambda d, s, w: bench.run_benchmark("bench.sparse", d, w),
    )
    r = run_check(check, 0, tmp_path)
    assert r.result == FAIL and "kernel mismatch" in r.detail and "Traceback" in r.data["traceback"]
    fake_bench("sparse", lambda argv: None)
    assert bench.run_benchmark("bench.sparse", torch.device("cpu"), tmp_path).result == FAIL
    fake_bench("sparse", lambda argv: sys.exit(2))
    assert bench.run_benchmark("bench.sparse", torch.device("cpu"), tmp_path).result == FAIL
