"""Parallel job runner: every job reported once, failures captured per job, same results in processes."""

from __future__ import annotations

import os

from pixvox.io.jobs import run_jobs


def square_or_fail(x: int) -> tuple[int, int]:
    if x % 4 == 3:
        raise ValueError(f"bad input {x}")
    return x * x, os.getpid()


def test_in_process_and_in_workers_agree():
    jobs = list(range(9))
    serial = {r.key: r for r in run_jobs(square_or_fail, jobs, workers=1, progress=False)}
    parallel = {r.key: r for r in run_jobs(square_or_fail, jobs, workers=2, progress=False)}
    assert sorted(serial) == sorted(parallel) == [str(j) for j in jobs]
    for k in serial:
        assert serial[k].ok == parallel[k].ok == (int(k) % 4 != 3)
        if serial[k].ok:
            assert serial[k].value[0] == parallel[k].value[0] == int(k) ** 2
        else:
            assert serial[k].error == parallel[k].error == f"ValueError: bad input {k}"
    assert {r.value[1] for r in serial.values() if r.ok} == {os.getpid()}
    assert os.getpid() not in {r.value[1] for r in parallel.values() if r.ok}
