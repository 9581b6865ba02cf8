"""The 2-process check: its comparison, and that it fails without synchronized BatchNorm."""

from __future__ import annotations

import pytest
import torch

from pixvox.selftest import distributed
from pixvox.selftest.report import FAIL, PASS


def test_compare_states_measures_the_update_not_the_weights():
    d = torch.float64
    before = {"w": torch.ones(4, dtype=d), "still": torch.zeros(2, dtype=d)}
    single = {
        "w": before["w"] + torch.tensor([0.1, 0.0, 0.0, 0.0], dtype=d),
        "still": torch.zeros(2, dtype=d),
    }
    close = {"w": single["w"] + 1e-6, "still": torch.zeros(2, dtype=d)}
    far = {"w": single["w"] + torch.tensor([0.0, 0.05, 0.0, 0.0], dtype=d), "still": torch.zeros(2, dtype=d)}
    worst, name = distributed.compare_states(before, single, close)
    assert worst == pytest.approx(1e-5, rel=1e-2) and name == "w"
    worst, name = distributed.compare_states(before, single, far)
    assert worst == pytest.approx(0.5, rel=1e-4)
    worst, name = distributed.compare_states(before, single, {"w": single["w"]})
    assert worst == float("inf") and "still" in name


@pytest.mark.slow
def test_two_processes_without_synchronized_batchnorm_fail(tmp_path, seed):
    """BatchNorm in training mode over one sample per process is not the two-sample statistic: the
    check must see the difference (with sync_bn it passes: tests/selftest/test_runner.py runs it)."""
    r = distributed.check_ddp(torch.device("cpu"), seed, tmp_path, sync_bn=False)
    assert r.result == FAIL and r.data["max_rel_diff"] > 100 * distributed.REL_TOL, r.figure


@pytest.mark.cuda
def test_cuda_needs_two_gpus_or_skips(tmp_path, seed):
    r = distributed.check_ddp(torch.device("cuda", 0), seed, tmp_path)
    if torch.cuda.device_count() < 2:
        assert r.result == "SKIP" and "2 visible GPUs" in r.detail
    else:
        assert r.result == PASS, r.detail
