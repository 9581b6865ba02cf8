"""Compute threads chosen for the user: one policy for every job, applied before torch starts.

torch's default (one OpenMP thread per logical CPU of the *machine*) oversubscribes a process that
may use only some of its cores (affinity mask, cgroup quota) or shares them with other training
processes. The policy, in order:

1. ``OMP_NUM_THREADS`` set in the environment (by the user, a cluster script or torchrun): kept.
2. ``train.cpu_threads`` > 0 in the config: used.
3. Otherwise: the cores this process may use (affinity mask, capped by a cgroup CPU quota; not
   ``os.cpu_count()``, which counts the whole machine), shared among the node's processes
   (``LOCAL_WORLD_SIZE``). Data workers get cores of their own only where the share exceeds twice
   their number (share − workers threads); otherwise they run beside the compute threads. A worker
   reading prepared samples is idle most of a step: on the 2-core machine the Quickstart's data wait
   was 0.4% of a step, and 2 compute threads beside its 1 worker took 1.14 s per step against 1.64 s
   for 1 thread (tools/bench_pretrain.py, 2026-12-02; MinkowskiEngine with patch 0012). At least 1.

Cores busy with *other* work are not counted: the sparse engine's short parallel loops stall when a
thread waits for a busy core (beside two other jobs on the 2-core machine, 6 Quickstart steps took
18 s at 1 thread and 87 s at 2), but a cap by the load average misjudged back-to-back runs (a run
started just after another got 1 thread on an idle machine: 2.26 s/step against 1.51 at 2), so on a
shared machine set ``train.cpu_threads=1`` or ``OMP_NUM_THREADS=1`` yourself.

:func:`export_thread_count` writes the choice to ``OMP_NUM_THREADS`` before torch is imported (an
OpenMP pool sized earlier keeps its threads); the job calls ``torch.set_num_threads`` with the same
number (:func:`plan_threads` returns it) and logs :meth:`ThreadChoice.describe` at start.
This module does not import torch.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, MutableMapping
from dataclasses import dataclass
from pathlib import Path

from pixvox.config.loader import ConfigError

__all__ = [
    "ENV_VAR",
    "ThreadChoice",
    "choose_threads",
    "usable_cores",
    "parse_cgroup_v2_cpu_max",
    "parse_cgroup_v1_quota",
    "plan_threads",
    "export_thread_count",
]

ENV_VAR = "OMP_NUM_THREADS"


@dataclass(frozen=True)
class ThreadChoice:
    threads: int  #: compute threads of this process (torch intra-op / OpenMP)
    source: str  #: "environment", "config" or "cores"
    cores: int  #: cores this process may use (before sharing with other processes and workers)
    cores_from: str  #: what limited the cores: "affinity mask", "cgroup CPU quota", "cpu count"
    workers: int  #: DataLoader worker processes of this process
    processes: int = 1  #: training processes on this node sharing the cores
    #: source "cores" only: the data workers got cores of their own (threads = share - workers)
    workers_own_cores: bool = False

    def describe(self) -> str:
        """One line for the start of a run, e.g. ``compute threads: 14 (16 cores (affinity mask) - 2 data workers)``."""
        if self.source == "environment":
            why = f"{ENV_VAR}={self.threads} from the environment"
        elif self.source == "config":
            why = f"train.cpu_threads={self.threads}"
        else:
            share = f"{self.cores} cores ({self.cores_from})"
            if self.processes > 1:
                share += f" / {self.processes} processes"
            workers = f"{self.workers} data worker{'s' if self.workers != 1 else ''}"
            if self.workers == 0:
                why = share
            elif self.workers_own_cores:
                why = f"{share} - {workers}"
            else:
                why = f"{share}, shared with {workers}"
        return f"compute threads: {self.threads} ({why})"


def _first_positive_int(text: str) -> int | None:
    """``OMP_NUM_THREADS`` may list one count per nesting level (``"4,2"``); the first is ours."""
    head = text.strip().split(",")[0].strip()
    try:
        value = int(head)
    except ValueError:
        return None
    return value if value >= 1 else None


def choose_threads(
    cores: int,
    workers: int,
    env: Mapping[str, str],
    config_threads: int = 0,
    processes: int = 1,
    cores_from: str = "affinity mask",
) -> ThreadChoice:
    """The policy above as a pure function of the cores, workers, environment and config value."""
    raw = env.get(ENV_VAR)
    if raw is not None and raw.strip():
        n = _first_positive_int(raw)
        if n is None:
            raise ConfigError(
                f"environment: {ENV_VAR}={raw!r} is not a positive number of threads; set it to e.g. 1, "
                f"or unset it to let pixvox choose from the cores"
            )
        return ThreadChoice(n, "environment", cores, cores_from, workers, processes)
    if config_threads > 0:
        return ThreadChoice(config_threads, "config", cores, cores_from, workers, processes)
    share = max(1, cores // max(1, processes))
    own = share > 2 * workers
    threads = share - workers if own else share
    return ThreadChoice(max(1, threads), "cores", cores, cores_from, workers, processes, own)


def parse_cgroup_v2_cpu_max(text: str) -> float | None:
    """``cpu.max`` (``"max 100000"`` or ``"150000 100000"``) → CPUs allowed (1.5), None without a limit."""
    parts = text.split()
    if len(parts) != 2 or parts[0] == "max":
        return None
    try:
        quota, period = int(parts[0]), int(parts[1])
    except ValueError:
        return None
    return quota / period if quota > 0 and period > 0 else None


def parse_cgroup_v1_quota(quota_text: str, period_text: str) -> float | None:
    """``cpu.cfs_quota_us`` / ``cpu.cfs_period_us`` → CPUs allowed; None when the quota is -1 (none)."""
    try:
        quota, period = int(quota_text.strip()), int(period_text.strip())
    except ValueError:
        return None
    return quota / period if quota > 0 and period > 0 else None


def _read(path: Path) -> str | None:
    try:
        return path.read_text()
    except OSError:
        return None


def cgroup_cpu_limit(
    root: Path = Path("/sys/fs/cgroup"), proc_cgroup: Path = Path("/proc/self/cgroup")
) -> float | None:
    """The smallest CPU quota on this process's cgroup path (v2), or of its cpu controller (v1)."""
    limits: list[float] = []
    for line in (_read(proc_cgroup) or "").splitlines():
        hierarchy, _, rest = line.partition(":")
        controllers, _, rel = rest.partition(":")
        rel = rel.strip().lstrip("/")
        if hierarchy == "0" and not controllers:  # cgroup v2: every ancestor may carry a limit
            node = root / rel if rel else root
            while True:
                text = _read(node / "cpu.max")
                limit = parse_cgroup_v2_cpu_max(text) if text else None
                if limit is not None:
                    limits.append(limit)
                if node == root or root not in node.parents:
                    break
                node = node.parent
        elif "cpu" in controllers.split(","):  # cgroup v1
            for base in (root / controllers, root / "cpu", root / "cpu,cpuacct"):
                for folder in (base / rel, base):
                    q, p = _read(folder / "cpu.cfs_quota_us"), _read(folder / "cpu.cfs_period_us")
                    limit = parse_cgroup_v1_quota(q, p) if q and p else None
                    if limit is not None:
                        limits.append(limit)
    return min(limits) if limits else None


def usable_cores() -> tuple[int, str]:
    """``(cores, what limited them)``: the affinity mask, capped by a cgroup CPU quota (rounded down)."""
    if hasattr(os, "sched_getaffinity"):
        cores, source = len(os.sched_getaffinity(0)), "affinity mask"
    else:  # macOS, Windows
        cores, source = os.cpu_count() or 1, "cpu count"
    quota = cgroup_cpu_limit()
    if quota is not None and math.floor(quota) < cores:
        cores, source = max(1, math.floor(quota)), "cgroup CPU quota"
    return cores, source


def _processes_per_node(env: Mapping[str, str]) -> int:
    try:
        return max(1, int(env.get("LOCAL_WORLD_SIZE", "1")))
    except ValueError:
        return 1


_exported: ThreadChoice | None = None  #: what export_thread_count wrote, so the job reports its reason


def plan_threads(
    num_workers: int, config_threads: int = 0, env: Mapping[str, str] | None = None
) -> ThreadChoice:
    """The choice for this process (the one :func:`export_thread_count` made, if it set the variable)."""
    env = os.environ if env is None else env
    if _exported is not None and env.get(ENV_VAR) == str(_exported.threads):
        return _exported
    cores, cores_from = usable_cores()
    return choose_threads(cores, num_workers, env, config_threads, _processes_per_node(env), cores_from)


def export_thread_count(
    num_workers: int, config_threads: int = 0, env: MutableMapping[str, str] | None = None
) -> ThreadChoice:
    """Choose and write ``OMP_NUM_THREADS`` (unless set already); call before torch is imported."""
    global _exported
    env = os.environ if env is None else env
    choice = plan_threads(num_workers, config_threads, env)
    if choice.source != "environment":
        env[ENV_VAR] = str(choice.threads)
        _exported = choice
    return choice
