"""Run independent preparation jobs (one scene, one sample) in worker processes with a progress bar.

A failing job does not stop the others: its exception becomes a :class:`JobResult` with ``ok=False``
and a one-line ``error`` that the caller reports as a counted skip. Workers are started with
``spawn`` (safe with torch/OpenMP already loaded in the parent) and use one thread each.
"""

from __future__ import annotations

import logging
import multiprocessing as mp
import os
import traceback
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from tqdm import tqdm

log = logging.getLogger("pixvox.prep")


@dataclass
class JobResult:
    """Outcome of one job: ``value`` (what the function returned) when ``ok``, else ``error``."""

    key: str
    ok: bool
    value: Any = None
    error: str | None = None


def _init_worker() -> None:
    os.environ["OPENBLAS_NUM_THREADS"] = "1"
    os.environ["OMP_NUM_THREADS"] = "1"
    try:
        import torch

        torch.set_num_threads(1)
    except ImportError:  # pragma: no cover - torch is a dependency
        pass


def _call(payload: tuple[Callable[[Any], Any], str, Any]) -> JobResult:
    fn, key, job = payload
    try:
        return JobResult(key, True, fn(job))
    except Exception as err:  # reported per job; the run continues
        msg = f"{type(err).__name__}: {err}"
        log.debug("job %s failed:\n%s", key, traceback.format_exc())
        return JobResult(key, False, error=msg)


def run_jobs(
    fn: Callable[[Any], Any],
    jobs: Sequence[Any],
    *,
    workers: int = 1,
    desc: str = "jobs",
    key: Callable[[Any], str] = str,
    progress: bool = True,
) -> Iterable[JobResult]:
    """Apply ``fn`` to every job, yielding results as they finish (order not guaranteed with workers > 1).

    ``fn`` must be a module-level function (picklable) when ``workers > 1``. ``key(job)`` names a
    job in results and error messages.
    """
    payloads = [(fn, key(j), j) for j in jobs]
    bar = tqdm(
        total=len(payloads), desc=desc, unit="job", disable=not progress or not payloads, dynamic_ncols=True
    )
    try:
        if workers <= 1 or len(payloads) <= 1:
            for p in payloads:
                r = _call(p)
                bar.update(1)
                yield r
            return
        ctx = mp.get_context("spawn")
        with ctx.Pool(processes=min(workers, len(payloads)), initializer=_init_worker) as pool:
            for r in pool.imap_unordered(_call, payloads, chunksize=1):
                bar.update(1)
                yield r
    finally:
        bar.close()


def setup_logging(verbose: bool = False) -> None:
    """Log ``pixvox.*`` messages to stderr (INFO, or DEBUG with ``verbose``) for the preparation CLIs."""
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        datefmt="%H:%M:%S",
    )
