"""The SLURM script: directives sbatch reads, requeue on the time-limit signal, tools/pretrain.sh.

The static checker runs on the real script and on broken copies; the signal and requeue logic then runs
for real under bash, with stand-ins for ``srun``, ``squeue``, ``scontrol`` and ``tools/pretrain.sh``.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest

from tests.packaging.common import SBATCH


def sbatch_problems(text: str) -> list[str]:
    """The SLURM script: directives sbatch will read, requeue on a warning signal, tools/pretrain.sh."""
    problems = []
    lines = text.splitlines()
    if not lines or not re.match(r"#!\s*(/usr/bin/env\s+bash|/bin/bash)", lines[0]):
        problems.append("first line is not a bash shebang")
    directives, code, first_command = [], [], None
    for lineno, line in enumerate(lines[1:], 2):
        stripped = line.strip()
        if stripped.startswith("#SBATCH"):
            if first_command is not None:
                problems.append(
                    f"line {lineno}: #SBATCH after the first command (line {first_command}) is ignored"
                )
            directives.append(stripped[len("#SBATCH") :].strip())
        elif stripped and not stripped.startswith("#"):
            first_command = first_command or lineno
            code.append(stripped)
    if "--requeue" not in directives:
        problems.append("no #SBATCH --requeue")
    lead = None
    for d in directives:
        m = re.fullmatch(r"--signal=B:(?:SIG)?TERM@(\d+)", d)
        if m:
            lead = int(m.group(1))
    if lead is None:
        problems.append("no #SBATCH --signal=B:TERM@<seconds>")
    elif lead < 60:
        problems.append(f"--signal lead time {lead} s is below SLURM's 60 s signal resolution")
    body = "\n".join(code)
    timeout = re.search(r"TORCH_ELASTIC_SHUTDOWN_TIMEOUT:-(\d+)", body)
    if not timeout:
        problems.append("TORCH_ELASTIC_SHUTDOWN_TIMEOUT gets no default")
    elif lead is not None and int(timeout.group(1)) >= lead:
        problems.append(
            f"TORCH_ELASTIC_SHUTDOWN_TIMEOUT {timeout.group(1)} s is not below the {lead} s signal lead"
        )
    # Invocations, not mentions in messages: `bash tools/pretrain.sh`, a line starting with srun, ...
    for pattern, why in (
        (r"\b(?:bash|sh)\s+(?:\./)?tools/pretrain\.sh\b", "does not run tools/pretrain.sh"),
        (r"^srun\s", "does not start the nodes with srun"),
        (r"(?<![\w-])--resume\b", "does not pass --resume"),
        (r"^scontrol\s+requeue\s", "never requeues the job"),
    ):
        if not re.search(pattern, body, re.M):
            problems.append(f"the script {why}")
    return problems


def test_sbatch_script_requeues_on_the_warning_signal_and_runs_pretrain():
    assert sbatch_problems(SBATCH.read_text()) == []


@pytest.mark.parametrize(
    "old, new, expected",
    [
        ("#SBATCH --requeue\n", "", "no #SBATCH --requeue"),
        ("--signal=B:TERM@120", "--signal=B:TERM@30", "below SLURM's 60 s"),
        ("--signal=B:TERM@120", "--signal=TERM@120", "no #SBATCH --signal=B:TERM"),
        ("TORCH_ELASTIC_SHUTDOWN_TIMEOUT:-90", "TORCH_ELASTIC_SHUTDOWN_TIMEOUT:-150", "not below the 120 s"),
        (
            "#SBATCH --job-name=pixvox-pretrain\n",
            "set -u\n#SBATCH --job-name=pixvox-pretrain\n",
            "is ignored",
        ),
        ("bash tools/pretrain.sh)", "bash tools/train.sh)", "does not run tools/pretrain.sh"),
        ('scontrol requeue "$SLURM_JOB_ID"', "true", "never requeues"),
    ],
)
def test_sbatch_checker_finds_a_mismatch(old, new, expected):
    text = SBATCH.read_text()
    assert old in text, f"the sbatch script no longer contains {old!r}; update this test case"
    problems = sbatch_problems(text.replace(old, new))
    assert any(expected in p for p in problems), problems


# ------------------------------------------------------------ the sbatch script, run under bash
FAKE_PRETRAIN = """#!/usr/bin/env bash
# Stand-in for tools/pretrain.sh: records its arguments and environment, then "trains" until SIGTERM,
# when it "saves a checkpoint" and exits 0, as the real one does.
printf '%s\\n' "$@" > "$FAKE_LOG/args"
env | grep -E '^(MASTER_ADDR|MASTER_PORT|TORCH_ELASTIC_SHUTDOWN_TIMEOUT)=' > "$FAKE_LOG/env"
env | grep -E '^(OPENBLAS_NUM_THREADS|PIXVOX_SKIP_SETUP)=' >> "$FAKE_LOG/env"
trap 'echo saved > "$FAKE_LOG/checkpoint"; exit 0' TERM
touch "$FAKE_LOG/started"
if [[ -n "${FAKE_EXIT:-}" ]]; then exit "$FAKE_EXIT"; fi
for _ in $(seq 200); do sleep 0.05; done  # 10 s, then fail with 99
exit 99
"""
FAKE_SRUN = """#!/usr/bin/env bash
# Stand-in for srun: records its options and runs the command once, as a node's single task.
printf '%s\\n' "$@" > "$FAKE_LOG/srun_args"
while [[ $# -gt 0 && "$1" == --* ]]; do shift; done
exec "$@"
"""
FAKE_SCONTROL = """#!/usr/bin/env bash
case "$1" in
    show) printf 'node-a\\nnode-b\\n' ;;
    requeue) echo "$2" >> "$FAKE_LOG/requeued" ;;
    *) exit 1 ;;
esac
"""
FAKE_SQUEUE = """#!/usr/bin/env bash
echo "$FAKE_TIME_LEFT"
"""
FAKE_SETUP_ENV = """#!/usr/bin/env bash
# Stand-in for tools/setup_env.sh: counts its runs and fails when asked to.
echo run >> "$FAKE_LOG/setup_runs"
exit "${FAKE_SETUP_EXIT:-0}"
"""


@pytest.fixture
def slurm_sandbox(tmp_path):
    """A submission folder with a stand-in tools/pretrain.sh and stand-ins for SLURM's commands."""
    if shutil.which("bash") is None:
        pytest.skip("bash is not available")
    repo, bin_dir, log = tmp_path / "repo", tmp_path / "bin", tmp_path / "log"
    for d in (repo / "tools", bin_dir, log):
        d.mkdir(parents=True)
    for path, body in (
        (repo / "tools" / "pretrain.sh", FAKE_PRETRAIN),
        (repo / "tools" / "setup_env.sh", FAKE_SETUP_ENV),
        (bin_dir / "srun", FAKE_SRUN),
        (bin_dir / "scontrol", FAKE_SCONTROL),
        (bin_dir / "squeue", FAKE_SQUEUE),
    ):
        path.write_text(body)
        path.chmod(0o755)
    drop = {"VIRTUAL_ENV", "CONDA_PREFIX", "MASTER_ADDR", "MASTER_PORT", "TORCH_ELASTIC_SHUTDOWN_TIMEOUT"}
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("SLURM_", "PIXVOX_", "FAKE_")) and k not in drop
    }
    env.update(
        PATH=f"{bin_dir}:{os.environ.get('PATH', '/usr/bin:/bin')}",
        FAKE_LOG=str(log),
        FAKE_TIME_LEFT="1:30",
        SLURM_JOB_ID="12345",
        SLURM_SUBMIT_DIR=str(repo),
        SLURM_JOB_NODELIST="node-[a-b]",
        SLURM_JOB_NUM_NODES="2",
        SLURM_CPUS_PER_TASK="8",
    )
    return repo, log, env


def run_sbatch(env: dict[str, str], send: signal.Signals | None, log: Path) -> tuple[int, str]:
    """Run the batch script as SLURM would; once the training has started, send it ``send``."""
    proc = subprocess.Popen(
        ["bash", str(SBATCH), "configs/ppkt.yaml", "experiment.name=unit test"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        if send is not None:
            deadline = time.monotonic() + 20
            while not (log / "started").exists():
                assert proc.poll() is None, (
                    f"the script ended before the training started:\n{proc.stdout.read()}"
                )
                assert time.monotonic() < deadline, "the stand-in training did not start within 20 s"
                time.sleep(0.02)
            proc.send_signal(send)
        out, _ = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    return proc.returncode, out


def _read(path: Path) -> str | None:
    return path.read_text() if path.exists() else None


def test_sbatch_forwards_the_time_limit_signal_then_requeues(slurm_sandbox):
    _, log, env = slurm_sandbox
    rc, out = run_sbatch(env, signal.SIGTERM, log)
    assert rc == 0, out
    assert _read(log / "checkpoint") == "saved\n", out  # SIGTERM reached the training
    assert _read(log / "requeued") == "12345\n", out
    # Arguments pass through unchanged (one with a space), followed by --resume auto.
    assert _read(log / "args").splitlines() == [
        "configs/ppkt.yaml",
        "experiment.name=unit test",
        "--resume",
        "auto",
    ]
    srun = _read(log / "srun_args").splitlines()
    assert {"--nodes=2", "--ntasks-per-node=1", "--cpus-per-task=8"} <= set(srun)
    assert srun[srun.index("tools/pretrain.sh") - 1] == "bash"
    environment = dict(line.split("=", 1) for line in _read(log / "env").splitlines())
    assert environment == {
        "MASTER_ADDR": "node-a",  # first host of the job
        "MASTER_PORT": str(20000 + 12345 % 20000),
        "TORCH_ELASTIC_SHUTDOWN_TIMEOUT": "90",
        "OPENBLAS_NUM_THREADS": env.get("OPENBLAS_NUM_THREADS", "1"),
        "PIXVOX_SKIP_SETUP": "1",  # the nodes skip the setup check ...
    }
    assert _read(log / "setup_runs") == "run\n"  # ... which ran once, before srun


@pytest.mark.parametrize(
    "time_left, window, requeued",
    [
        ("1:30", 600, True),  # 90 s
        ("10:00", 600, True),  # 600 s, on the boundary
        ("10:01", 600, False),
        ("08:09", 500, True),  # 489 s: leading zeros are decimal, not octal
        ("08:09", 480, False),
        ("1:00:00", 3600, True),
        ("1-00:00:01", 86400, False),  # 86401 s
        ("3-04:00:00", 600, False),  # scancel or pre-emption far from the time limit
        ("UNLIMITED", 600, False),
        ("", 600, False),  # squeue gave nothing
    ],
)
def test_sbatch_requeues_only_near_the_time_limit(slurm_sandbox, time_left, window, requeued):
    _, log, env = slurm_sandbox
    env.update(FAKE_TIME_LEFT=time_left, PIXVOX_REQUEUE_WINDOW=str(window))
    rc, out = run_sbatch(env, signal.SIGTERM, log)
    assert rc == 0, out
    assert _read(log / "checkpoint") == "saved\n", out
    assert ((log / "requeued").exists()) == requeued, out


def test_sbatch_usr1_checkpoints_and_requeues_at_once(slurm_sandbox):
    _, log, env = slurm_sandbox
    env["FAKE_TIME_LEFT"] = "20:00:00"
    rc, out = run_sbatch(env, signal.SIGUSR1, log)
    assert rc == 0, out
    assert _read(log / "checkpoint") == "saved\n" and _read(log / "requeued") == "12345\n", out


def test_sbatch_stops_requeueing_after_the_limit(slurm_sandbox):
    _, log, env = slurm_sandbox
    env.update(SLURM_RESTART_COUNT="3", PIXVOX_MAX_REQUEUES="3")
    rc, out = run_sbatch(env, signal.SIGTERM, log)
    assert rc == 0 and not (log / "requeued").exists(), out
    assert "PIXVOX_MAX_REQUEUES=3" in out


def test_sbatch_passes_on_the_exit_status_of_a_run_that_ends_by_itself(slurm_sandbox):
    _, log, env = slurm_sandbox
    env.update(FAKE_EXIT="3", PIXVOX_RESUME="none", PIXVOX_SKIP_SETUP="1")
    rc, out = run_sbatch(env, None, log)
    assert rc == 3, out
    assert not (log / "requeued").exists() and not (log / "checkpoint").exists()
    assert _read(log / "args").splitlines() == [
        "configs/ppkt.yaml",
        "experiment.name=unit test",
        "--resume",
        "none",
    ]
    assert not (log / "setup_runs").exists()  # PIXVOX_SKIP_SETUP=1 given by the user


def test_sbatch_stops_before_srun_when_the_setup_check_fails(slurm_sandbox):
    _, log, env = slurm_sandbox
    env["FAKE_SETUP_EXIT"] = "1"
    rc, out = run_sbatch(env, None, log)
    assert rc == 2 and "tools/setup_env.sh failed" in out, out
    assert not (log / "srun_args").exists()


def test_sbatch_refuses_to_run_outside_slurm_or_the_repository(slurm_sandbox, tmp_path):
    repo, log, env = slurm_sandbox
    outside = {k: v for k, v in env.items() if k != "SLURM_JOB_ID"}
    rc, out = run_sbatch(outside, None, log)
    assert rc == 2 and "sbatch tools/slurm_pretrain.sbatch" in out
    (repo / "tools" / "pretrain.sh").unlink()
    rc, out = run_sbatch(env, None, log)
    assert rc == 2 and "submit from the pixvox repository root" in out
    assert not (log / "srun_args").exists()
