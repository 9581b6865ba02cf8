"""Load pretrained student weights by parameter name, with a report of what matched.

Pretraining saves the student's ``state_dict``; fine-tuning builds the same variant with a different
``final`` layer and loads everything else. Keys under ``expected_missing_prefixes`` (``final.`` by
default) are left at their fresh initialization and not reported as problems.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

__all__ = ["LoadReport", "load_student_weights", "extract_student_state_dict"]

logger = logging.getLogger(__name__)

#: checkpoint keys that may wrap the student's state dict (pixvox pretraining writes "student")
WRAPPER_KEYS = ("student", "state_dict", "model")


@dataclass
class LoadReport:
    """What :func:`load_student_weights` did.

    ``loaded``: keys copied from the checkpoint. ``missing``: model keys absent from the checkpoint
    (problems). ``expected_missing``: model keys under the expected prefixes (left as initialized).
    ``unexpected``: checkpoint keys the model does not have. ``shape_mismatched``: ``(key,
    checkpoint shape, model shape)`` of keys present in both with different shapes (not loaded).
    """

    loaded: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    expected_missing: list[str] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)
    shape_mismatched: list[tuple[str, tuple[int, ...], tuple[int, ...]]] = field(default_factory=list)

    @property
    def complete(self) -> bool:
        """Every model key outside the expected-missing prefixes was loaded."""
        return not self.missing and not self.shape_mismatched

    def __str__(self) -> str:
        lines = [
            f"loaded {len(self.loaded)} tensors; {len(self.expected_missing)} left initialized as expected; "
            f"{len(self.missing)} missing, {len(self.unexpected)} unexpected, "
            f"{len(self.shape_mismatched)} shape-mismatched"
        ]
        if self.missing:
            lines.append(f"  missing: {_preview(self.missing)}")
        if self.unexpected:
            lines.append(f"  unexpected: {_preview(self.unexpected)}")
        for key, got, want in self.shape_mismatched[:10]:
            lines.append(f"  shape mismatch: {key} checkpoint {got} vs model {want}")
        return "\n".join(lines)


def _preview(keys: Sequence[str], n: int = 8) -> str:
    return ", ".join(keys[:n]) + (f", … ({len(keys)} in all)" if len(keys) > n else "")


def extract_student_state_dict(checkpoint: Mapping[str, Any]) -> dict[str, torch.Tensor]:
    """The student's tensors from a state dict or a checkpoint dict, without a ``module.`` prefix."""
    state: Any = checkpoint
    for key in WRAPPER_KEYS:
        if isinstance(state, Mapping) and isinstance(state.get(key), Mapping):
            state = state[key]
            break
    if not isinstance(state, Mapping):
        raise TypeError(f"expected a state dict (mapping of names to tensors), got {type(state).__name__}")
    tensors = {k: v for k, v in state.items() if isinstance(v, torch.Tensor)}
    if tensors and all(k.startswith("module.") for k in tensors):  # saved from DistributedDataParallel
        tensors = {k[len("module.") :]: v for k, v in tensors.items()}
    return tensors


def load_student_weights(
    model: nn.Module,
    state_dict: Mapping[str, Any] | str | os.PathLike,
    expected_missing_prefixes: Sequence[str] = ("final.",),
) -> LoadReport:
    """Copy matching tensors of ``state_dict`` into ``model`` by name.

    Args:
        model: the student (or any module).
        state_dict: a state dict, a checkpoint dict holding one under ``"student"`` (or
            ``"state_dict"``/``"model"``), or a path to a file with either.
        expected_missing_prefixes: model keys starting with these are not loaded and not reported as
            missing (the fine-tuning head); pass ``()`` to load everything, ``final`` included.

    Returns:
        a :class:`LoadReport` (also logged). Raises ``ValueError`` when no parameter matches by name
        and shape: the checkpoint belongs to another network, or the variant is wrong.
    """
    source = "state dict"
    if isinstance(state_dict, (str, os.PathLike)):
        source = str(state_dict)
        path = Path(state_dict)
        if not path.is_file():
            raise FileNotFoundError(f"student checkpoint {path} does not exist")
        try:
            state_dict = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as err:
            raise ValueError(
                f"cannot read student checkpoint {path}: {err}; the file may be truncated"
            ) from err
    ckpt = extract_student_state_dict(state_dict)
    prefixes = tuple(expected_missing_prefixes)
    own = model.state_dict()

    report = LoadReport()
    to_load = {}
    for key, target in own.items():
        if prefixes and key.startswith(prefixes):
            report.expected_missing.append(key)
        elif key not in ckpt:
            report.missing.append(key)
        elif ckpt[key].shape != target.shape:
            report.shape_mismatched.append((key, tuple(ckpt[key].shape), tuple(target.shape)))
        else:
            to_load[key] = ckpt[key]
            report.loaded.append(key)
    report.unexpected = [k for k in ckpt if k not in own]
    parameter_names = {name for name, _ in model.named_parameters()}
    if not any(k in parameter_names for k in to_load):  # matching BN counters alone mean nothing
        raise ValueError(
            f"no tensor of {source} matches the model by name and shape (checkpoint keys: "
            f"{_preview(list(ckpt), 5) or 'none'}; model keys: {_preview(list(own), 5)}). "
            "Is it a checkpoint of another network or variant?"
        )
    model.load_state_dict(to_load, strict=False)
    log = logger.warning if not report.complete else logger.info
    log("student weights from %s: %s", source, report)
    return report
