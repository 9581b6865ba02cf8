"""pixvox.bench.launch: the marks are timed when their lines arrive, not when the process ends."""

from __future__ import annotations

import sys

import pytest

from pixvox.bench.launch import time_launch

SCRIPT = """
import sys, time
print("setup", flush=True)
time.sleep(0.3)
print("2026-12-02 05:00:00,000 INFO pixvox: run dir outputs/x | 1 process(es)", flush=True)
time.sleep(0.6)
print("2026-12-02 05:00:01,000 INFO pixvox: training: steps 1-1", flush=True)
time.sleep(0.6)
"""


def test_marks_are_timed_as_their_lines_arrive(tmp_path):
    row = time_launch(tmp_path, [sys.executable, "-c", SCRIPT])
    assert 0.25 <= row["run_dir"] < row["ready"] < row["exit"]
    assert row["ready"] - row["run_dir"] >= 0.55  # the 0.6 s sleep between the two lines
    assert row["exit"] - row["ready"] >= 0.55


def test_a_failed_launch_is_an_error_naming_the_command(tmp_path):
    with pytest.raises(RuntimeError, match="exited with status 3"):
        time_launch(tmp_path, [sys.executable, "-c", "raise SystemExit(3)"])
