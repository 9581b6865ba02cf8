"""What the training loop skips instead of crashing: unreadable samples, empty batches, injected faults.

- :class:`SkipAwareCollate` wraps a job's collate: it drops the :class:`SkippedSample` markers a
  dataset returns for files it cannot read and returns a :class:`LoadedBatch` (the batch, or None
  when every sample of it was skipped, plus the skips), so the skips reach the main process also
  from DataLoader workers.
- :class:`SkippedSampleLog` appends each skip to ``<run_dir>/skipped_samples.jsonl`` and counts the
  distinct files.
- :func:`fault_nan_steps` reads the testing hook ``PIXVOX_FAULT_NAN_STEPS`` (docs/reliability.md).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, NamedTuple

from pixvox.datasets.skipped import SkippedSample
from pixvox.errors import UserError

#: testing hook: comma-separated step numbers (1-based, as in metrics.jsonl and checkpoint names)
#: whose loss the trainer replaces by NaN
NAN_STEPS_ENV = "PIXVOX_FAULT_NAN_STEPS"


def fault_nan_steps() -> frozenset[int]:
    """The steps ``PIXVOX_FAULT_NAN_STEPS`` names (empty when unset)."""
    raw = os.environ.get(NAN_STEPS_ENV, "").strip()
    if not raw:
        return frozenset()
    try:
        return frozenset(int(s) for s in raw.split(",") if s.strip())
    except ValueError:
        raise UserError(
            f"{NAN_STEPS_ENV}={raw!r}: expected comma-separated step numbers, e.g. 3,4,5"
        ) from None


class LoadedBatch(NamedTuple):
    """One process's batch as the loader yields it: ``batch`` is None when every sample was skipped."""

    batch: Any
    skipped: list[SkippedSample]


class SkipAwareCollate:
    """``collate`` over the samples that loaded; the skipped ones ride along in a :class:`LoadedBatch`."""

    def __init__(self, collate: Callable[[list[Any]], Any]) -> None:
        self.collate = collate

    def __call__(self, samples: Sequence[Any]) -> LoadedBatch:
        skipped = [s for s in samples if isinstance(s, SkippedSample)]
        kept = [s for s in samples if not isinstance(s, SkippedSample)]
        return LoadedBatch(self.collate(kept) if kept else None, skipped)


class SkippedSampleLog:
    """Appends skips to ``<run_dir>/skipped_samples.jsonl`` (one JSON object a line: step, rank,
    path, reason, index) and counts them. Each process appends its own lines, one ``write`` each."""

    def __init__(self, run_dir: str | Path, rank: int) -> None:
        self.path = Path(run_dir) / "skipped_samples.jsonl"
        self.rank = rank
        self.events = 0
        self.files: set[str] = set()

    def record(self, step: int, skipped: Sequence[SkippedSample]) -> int:
        """Write ``skipped``; returns how many of them are files this process had not skipped yet."""
        if not skipped:
            return 0
        before = len(self.files)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("a") as f:
            for s in skipped:
                f.write(json.dumps({"step": step, "rank": self.rank, **s.to_json()}) + "\n")
                self.files.add(s.path)
        self.events += len(skipped)
        return len(self.files) - before
