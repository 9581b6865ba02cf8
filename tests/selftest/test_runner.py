"""The self-test end to end on the CPU, its selection options, and its exit status on failure."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import torch

from pixvox.selftest import runner
from pixvox.selftest.report import FAIL, PASS, SKIP, CheckResult

EXPECTED_CPU = [
    "versions",
    "sparse_conv",
    "row_order",
    "ops.voxel_hash",
    "ops.backproject",
    "ops.pixel_to_voxel",
    "ops.scatter_sum",
    "ops.scatter_mean",
    "ops.scatter_max",
    "ops.gather",
    "pretrain_smoke",
    "ddp_2proc",
    "bench.backproject",
    "bench.pretrain",
    "bench.sparse",
]


@pytest.mark.slow
def test_selftest_end_to_end_on_cpu(tmp_path):
    report = tmp_path / "report" / "selftest.json"
    proc = subprocess.run(
        # One thread: the test machine is shared, and waiting OpenMP threads would slow it tenfold.
        [sys.executable, "-m", "pixvox.selftest", "--device", "cpu", "--threads", "1", "--json", str(report)],
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    assert "pixvox selftest: PASS" in proc.stdout
    data = json.loads(report.read_text())
    assert data["format"] == "pixvox.selftest" and data["passed"] is True
    assert [c["name"] for c in data["checks"]] == EXPECTED_CPU
    for c in data["checks"]:
        assert c["device"] in ("cpu", "cpu x2")
        if c["name"].startswith("bench."):
            try:
                __import__(f"pixvox.bench.{c['name'][6:]}")
                present = True
            except ModuleNotFoundError:
                present = False
            assert c["result"] == (PASS if present else SKIP), c
            if not present:
                assert "module not present" in c["detail"]
        else:
            assert c["result"] == PASS, c
    smoke = next(c for c in data["checks"] if c["name"] == "pretrain_smoke")
    losses = smoke["data"]["losses"]
    assert len(losses) == 20 and sum(losses[-5:]) < sum(losses[:5])
    versions = data["versions"]
    assert versions["minkowskiengine"] == "0.5.4" and versions["torch"].startswith("2.")
    assert versions["cuda_ext"] in ("cpu", "cpu+cuda")
    assert data["workdir"] is None  # removed after a clean run
    # Every check has a row in the printed table.
    table = proc.stdout[proc.stdout.index("check  ") :]
    for name in EXPECTED_CPU:
        assert name in table


def test_only_and_skip_select_by_name_or_group():
    checks = runner.build_checks([torch.device("cpu")])
    names = [c.name for c in runner.select(checks, "ops", "")]
    assert names == [n for n in EXPECTED_CPU if n.startswith("ops.")]
    names = [c.name for c in runner.select(checks, "", "bench,smoke,ddp")]
    assert names == EXPECTED_CPU[:10]
    assert [c.name for c in runner.select(checks, "versions,ops.gather", "")] == ["versions", "ops.gather"]
    with pytest.raises(SystemExit, match="unknown check"):
        runner.select(checks, "opz", "")


def test_a_failing_check_makes_the_exit_status_1_and_keeps_the_logs(tmp_path, monkeypatch, capsys):
    from pixvox.selftest import versions

    monkeypatch.setattr(
        versions,
        "check_versions",
        lambda d, s: CheckResult("versions", str(d), FAIL, detail="broken on purpose"),
    )
    report = tmp_path / "r.json"
    status = runner.main(["--device", "cpu", "--only", "versions,ops.gather", "--json", str(report)])
    assert status == 1
    data = json.loads(report.read_text())
    assert data["passed"] is False and data["counts"] == {PASS: 1, FAIL: 1, SKIP: 0}
    assert data["workdir"] is not None  # kept for the logs
    out = capsys.readouterr().out
    assert "pixvox selftest: FAIL" in out and "versions (cpu): broken on purpose" in out


def test_an_exception_in_a_check_is_a_failure_not_a_crash(tmp_path, monkeypatch):
    from pixvox.selftest import ops

    def explode(device, seed):
        raise RuntimeError("CUDA error: an illegal memory access was encountered")

    monkeypatch.setitem(ops.OP_CHECKS, "ops.gather", explode)
    report = tmp_path / "r.json"
    assert runner.main(["--device", "cpu", "--only", "ops.gather", "--json", str(report)]) == 1
    check = json.loads(report.read_text())["checks"][0]
    assert check["result"] == FAIL and "illegal memory access" in check["detail"]


def test_asking_for_cuda_without_a_gpu_is_a_clear_error(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(SystemExit, match="no CUDA device"):
        runner.main(["--device", "cuda"])
