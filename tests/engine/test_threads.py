"""The thread policy: a pure function of cores, workers, environment and config; cgroup quotas."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from pixvox.config import ConfigError
from pixvox.engine import threads as th


@pytest.mark.parametrize(
    ("cores", "workers", "processes", "expected", "why"),
    [
        (2, 1, 1, 2, "2 cores (affinity mask), shared with 1 data worker"),  # the Quickstart on 2 cores
        (2, 0, 1, 2, "2 cores (affinity mask))"),
        (3, 1, 1, 2, "3 cores (affinity mask) - 1 data worker"),
        (16, 2, 1, 14, "16 cores (affinity mask) - 2 data workers"),
        (16, 2, 4, 4, "16 cores (affinity mask) / 4 processes, shared with 2 data workers"),  # 4 each
        (32, 2, 4, 6, "32 cores (affinity mask) / 4 processes - 2 data workers"),  # 8 each, minus 2
        (1, 3, 1, 1, "shared with 3 data workers"),  # never below one thread
        (8, 0, 3, 2, "8 cores (affinity mask) / 3 processes)"),  # 8 // 3 = 2
    ],
)
def test_threads_are_the_cores_share_and_workers_take_cores_only_when_there_are_spare(
    cores, workers, processes, expected, why
):
    choice = th.choose_threads(cores, workers, {}, 0, processes)
    assert (choice.threads, choice.source) == (expected, "cores")
    assert f"compute threads: {expected} (" in choice.describe()
    assert why in choice.describe()


def test_an_explicit_environment_variable_wins_over_config_and_cores():
    choice = th.choose_threads(16, 2, {"OMP_NUM_THREADS": "3"}, config_threads=5)
    assert (choice.threads, choice.source) == (3, "environment")
    assert "OMP_NUM_THREADS=3 from the environment" in choice.describe()
    nested = th.choose_threads(16, 2, {"OMP_NUM_THREADS": "4,2"})  # one count per nesting level
    assert nested.threads == 4


def test_the_config_value_wins_over_the_cores():
    choice = th.choose_threads(16, 2, {}, config_threads=5)
    assert (choice.threads, choice.source) == (5, "config")
    assert "train.cpu_threads=5" in choice.describe()
    assert th.choose_threads(16, 2, {"OMP_NUM_THREADS": " "}, config_threads=5).source == "config"


@pytest.mark.parametrize("bad", ["0", "-1", "many", "2.5"])
def test_a_malformed_environment_variable_is_a_user_error(bad):
    with pytest.raises(ConfigError, match="OMP_NUM_THREADS"):
        th.choose_threads(4, 0, {"OMP_NUM_THREADS": bad})


def test_cgroup_quota_files_parse():
    assert th.parse_cgroup_v2_cpu_max("max 100000\n") is None
    assert th.parse_cgroup_v2_cpu_max("150000 100000\n") == pytest.approx(1.5)
    assert th.parse_cgroup_v2_cpu_max("garbage") is None
    assert th.parse_cgroup_v1_quota("-1\n", "100000\n") is None
    assert th.parse_cgroup_v1_quota("300000\n", "100000\n") == pytest.approx(3.0)


def test_cgroup_v2_limit_is_the_smallest_on_the_path(tmp_path):
    root = tmp_path / "cgroup"
    leaf = root / "job" / "step"
    leaf.mkdir(parents=True)
    (root / "cpu.max").write_text("max 100000\n")
    (root / "job" / "cpu.max").write_text("250000 100000\n")  # the job may use 2.5 CPUs
    (leaf / "cpu.max").write_text("max 100000\n")
    proc = tmp_path / "proc_cgroup"
    proc.write_text("0::/job/step\n")
    assert th.cgroup_cpu_limit(root, proc) == pytest.approx(2.5)
    proc.write_text("0::/\n")
    assert th.cgroup_cpu_limit(root, proc) is None


def test_cgroup_v1_limit(tmp_path):
    root = tmp_path / "cgroup"
    cpu = root / "cpu,cpuacct" / "docker" / "abc"
    cpu.mkdir(parents=True)
    (cpu / "cpu.cfs_quota_us").write_text("100000\n")
    (cpu / "cpu.cfs_period_us").write_text("100000\n")
    proc = tmp_path / "proc_cgroup"
    proc.write_text("12:cpu,cpuacct:/docker/abc\n11:memory:/docker/abc\n")
    assert th.cgroup_cpu_limit(root, proc) == pytest.approx(1.0)


def test_usable_cores_follow_the_affinity_mask_not_the_machine():
    if not hasattr(os, "sched_getaffinity"):
        pytest.skip("no sched_getaffinity on this platform")
    code = "from pixvox.engine.threads import usable_cores; print(usable_cores()[0])"
    out = subprocess.run(
        ["taskset", "-c", "0", sys.executable, "-c", code], capture_output=True, text=True, check=False
    )
    if out.returncode != 0:
        pytest.skip(f"taskset unavailable: {out.stderr.strip()}")
    assert out.stdout.strip() == "1"


def test_export_sets_the_variable_once_and_keeps_an_explicit_one(monkeypatch):
    monkeypatch.setattr(th, "_exported", None)  # restored after the test
    env: dict[str, str] = {}
    choice = th.export_thread_count(num_workers=10_000, config_threads=0, env=env)
    # more workers than cores: they share the cores, so every usable core is a compute thread
    assert choice.source == "cores" and choice.threads == th.usable_cores()[0]
    assert env["OMP_NUM_THREADS"] == str(choice.threads)
    # the job later asks for the plan: it is the exported one, not "from the environment"
    assert th.plan_threads(10_000, 0, env) is choice
    env = {"OMP_NUM_THREADS": "7"}
    assert th.export_thread_count(0, 3, env).threads == 7 and env["OMP_NUM_THREADS"] == "7"


def test_the_cli_exports_threads_before_torch_is_imported(tmp_path):
    """In a fresh process, the job launcher sets OMP_NUM_THREADS from the config before importing torch."""
    code = (
        "import sys, os\n"
        "from pixvox.engine import launch\n"
        "class Stop(Exception): pass\n"
        "def fake_class(info):\n"
        "    assert 'torch' not in sys.modules, 'torch was imported before the threads were set'\n"
        "    print('OMP', os.environ['OMP_NUM_THREADS'])\n"
        "    raise Stop\n"
        "launch.job_class = fake_class\n"
        "try:\n"
        "    launch.run_job('finetune', ['configs/finetune/synthetic.yaml', 'train.cpu_threads=3'])\n"
        "except Stop:\n"
        "    pass\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "OMP_NUM_THREADS"}
    repo = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=repo)
    assert out.returncode == 0, out.stderr
    assert "OMP 3" in out.stdout
