"""Run the benchmark's independent training runs side by side (``--jobs N``).

Every pretraining run (and every fine-tuning run) of the benchmark is cached by its resolved config
(:mod:`.arms`), so running them first in ``N`` worker processes and then letting the benchmark's own
loop find them finished gives exactly the results of a sequential run: each job is seeded by its
config and runs with its own ``train.cpu_threads`` (1 in ``configs/transfer/base.yaml``). On a 2-core
machine two single-thread runs side by side use both cores, where one run leaves one idle.

Workers are started with ``spawn`` (no fork of a process that already holds OpenMP threads) and
inherit the environment, ``OMP_NUM_THREADS`` included. Their log records go to ``log_file`` (the
benchmark's ``transfer.log``): a job configures logging only where nothing has, and a worker runs
several jobs, so it must not bind its handler to the first job's redirected stdout.
"""

from __future__ import annotations

import logging
import multiprocessing
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
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
) -> list[Any]:
    """Call ``fn(*args)`` for every ``(fn, args)`` of ``tasks`` in ``jobs`` processes; results in order.

    ``fn`` must be importable (a module-level function) and its arguments picklable. ``on_done(i,
    result)`` is called in this process as task ``i`` finishes. The first failure cancels the tasks not
    yet started and is raised here (the finished runs stay cached, so a rerun continues). Running
    one at a time is the caller's own loop, not this function's job.
    """
    results: list[Any] = [None] * len(tasks)
    ctx = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(
        max_workers=max(1, min(jobs, len(tasks))),
        mp_context=ctx,
        initializer=_init_worker,
        initargs=(str(log_file) if log_file is not None else None,),
    ) as pool:
        futures = {pool.submit(fn, *args): i for i, (fn, args) in enumerate(tasks)}
        pending = set(futures)
        while pending:
            done, pending = wait(pending, return_when=FIRST_COMPLETED)
            for fut in done:
                err = fut.exception()
                if err is not None:
                    pool.shutdown(wait=False, cancel_futures=True)
                    raise err
                i = futures[fut]
                results[i] = fut.result()
                if on_done is not None:
                    on_done(i, results[i])
    return results
