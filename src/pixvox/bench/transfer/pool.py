"""Run the benchmark's tasks side by side (``--jobs N``): training runs and evaluations.

Each task is seeded by its config and runs with one thread (``train.cpu_threads`` 1 in
``configs/transfer/base.yaml``; ``OMP_NUM_THREADS=1`` from tools/transfer_bench.py), so a task
gives the same result in a worker as in the benchmark's own process. A task may wait for others
(an evaluation for its pretraining run): it starts once they have finished, and a free process takes
the first ready task in list order. On a 2-core machine two single-thread tasks side by side use
both cores, where one leaves one idle.

Workers are started with ``spawn`` (no fork of a process that already holds OpenMP threads) and
inherit the environment, ``OMP_NUM_THREADS`` included. Their log records go to ``log_file`` (the
benchmark's ``transfer.log``): a job configures logging only where nothing has, and a worker runs
several jobs, so it must not bind its handler to the first job's redirected stdout.
"""

from __future__ import annotations

import logging
import multiprocessing
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from pathlib import Path
from typing import Any

__all__ = ["run_side_by_side"]

Task = tuple[Callable[..., Any], tuple[Any, ...]]


def _init_worker(log_file: str | None) -> None:
    # A spawned worker starts with the spawn method as its default, so a job's DataLoader would
    # pickle its collate function (a bound method of the job, model hooks and all) for its workers;
    # the sequential benchmark's jobs fork them, and so do these.
    if "fork" in multiprocessing.get_all_start_methods():
        multiprocessing.set_start_method("fork", force=True)
    if log_file is not None:
        logging.basicConfig(
            level=logging.INFO, filename=log_file, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
        )


def run_side_by_side(
    tasks: Sequence[Task],
    jobs: int,
    on_done: Callable[[int, Any], None] | None = None,
    log_file: Path | None = None,
    after: Sequence[Sequence[int]] | None = None,
) -> list[Any]:
    """Call ``fn(*args)`` for every ``(fn, args)`` of ``tasks`` in ``jobs`` processes; results in order.

    ``fn`` must be importable (a module-level function) and its arguments picklable. ``after[i]``
    lists the tasks that must finish before task ``i`` starts (an evaluation after its pretraining
    run); whenever a process is free it takes the first task in list order whose tasks before it have
    finished, so the list order is the priority. ``on_done(i, result)`` is called in this process as
    task ``i`` finishes. The first failure cancels the tasks not yet started and is raised here (the
    finished runs stay cached, so a rerun continues). Running one at a time is the caller's own loop,
    not this function's job.
    """
    n = len(tasks)
    deps = [set(a) for a in after] if after is not None else [set() for _ in range(n)]
    if len(deps) != n or any(not 0 <= j < n or j == i for i, d in enumerate(deps) for j in d):
        raise ValueError(f"after: {n} lists of indices of other tasks expected, got {after!r}")
    results: list[Any] = [None] * n
    ctx = multiprocessing.get_context("spawn")
    waiting, finished = list(range(n)), set()
    workers = max(1, min(jobs, n))
    with ProcessPoolExecutor(
        max_workers=workers,
        mp_context=ctx,
        initializer=_init_worker,
        initargs=(str(log_file) if log_file is not None else None,),
    ) as pool:
        running: dict[Future, int] = {}
        while waiting or running:
            # only as many submitted as there are processes: the pool's own queue would run in
            # submission order, and a task that became ready later could not overtake it
            while len(running) < workers:
                i = next((i for i in waiting if deps[i] <= finished), None)
                if i is None:
                    break
                waiting.remove(i)
                fn, args = tasks[i]
                running[pool.submit(fn, *args)] = i
            if not running:
                raise ValueError(f"tasks {waiting} wait for each other (a cycle in after)")
            done, _ = wait(running, return_when=FIRST_COMPLETED)
            for fut in done:
                i = running.pop(fut)
                err = fut.exception()
                if err is not None:
                    pool.shutdown(wait=False, cancel_futures=True)
                    raise err
                results[i] = fut.result()
                finished.add(i)
                if on_done is not None:
                    on_done(i, results[i])
    return results
