"""The marker a training dataset returns in place of a prepared sample it cannot read.

A :class:`SkippedSample` travels from a DataLoader worker to the main process inside the batch (the
engine's collate drops it and hands it to the trainer), which counts it, lists it in
``<run_dir>/skipped_samples.jsonl`` and stops the run past ``data.max_skipped_fraction``.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class SkippedSample:
    path: str  #: the prepared file that failed
    reason: str  #: the reader's message (names the file and the fix)
    index: int = -1  #: the dataset index that was asked for

    def to_json(self) -> dict[str, object]:
        return {"path": self.path, "reason": self.reason, "index": self.index}
