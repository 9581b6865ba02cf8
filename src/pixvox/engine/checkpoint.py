"""Checkpoints: atomic writes, newest-complete discovery for ``--resume auto``, safe loading.

A checkpoint is a plain dict of tensors, numbers, strings and lists (model, optimizer, scheduler and
scaler state dicts, step, RNG states, resolved config), so it loads with
``torch.load(..., weights_only=True)``.
"""

from __future__ import annotations

import random
import re
from pathlib import Path
from typing import Any

import numpy as np
import torch

from pixvox.errors import CheckpointError, CheckpointNotFoundError
from pixvox.io.atomic import atomic_open, remove_stale_temp_files

NAME = re.compile(r"^step_(\d{8})\.pt$")


def checkpoint_path(directory: str | Path, step: int) -> Path:
    return Path(directory) / f"step_{step:08d}.pt"


def list_checkpoints(directory: str | Path) -> list[Path]:
    """Complete checkpoints in ``directory``, oldest first (temporary files are never listed)."""
    d = Path(directory)
    if not d.is_dir():
        return []
    return sorted(p for p in d.iterdir() if NAME.match(p.name))


def latest_checkpoint(directory: str | Path) -> Path | None:
    found = list_checkpoints(directory)
    return found[-1] if found else None


def save_checkpoint(directory: str | Path, step: int, state: dict[str, Any], keep: int = 3) -> Path:
    """Write ``state`` as ``step_XXXXXXXX.pt`` atomically, then keep only the newest ``keep``.

    Also removes temporary files of writes a killed run left (one process writes checkpoints, so
    any other temporary file is stale; each can be as large as a checkpoint)."""
    path = checkpoint_path(directory, step)
    with atomic_open(path, "wb", fsync=True) as f:
        torch.save(state, f)
    remove_stale_temp_files(directory)
    for old in list_checkpoints(directory)[:-keep]:
        old.unlink(missing_ok=True)
    return path


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Load with ``weights_only=True``; a damaged file raises an error naming it."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointNotFoundError(f"checkpoint not found: {path}")
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except Exception as err:  # noqa: BLE001 - torch raises many types for damaged files
        raise CheckpointError(
            f"cannot load checkpoint {path}: {err}. Delete it to resume from the previous one."
        ) from err


def resolve_resume(spec: str | None, directory: str | Path) -> Path | None:
    """``--resume``: None/'' = fresh start, 'auto' = newest complete checkpoint if any, else a path."""
    if not spec:
        return None
    if spec == "auto":
        return latest_checkpoint(directory)
    path = Path(spec)
    if not path.is_file():
        raise CheckpointNotFoundError(f"--resume {spec}: no such checkpoint file")
    return path


def rng_state() -> dict[str, Any]:
    """Python, NumPy and torch RNG states as weights_only-loadable values."""
    kind, keys, pos, has_gauss, cached = np.random.get_state()  # noqa: NPY002 - the global state is the point
    state = {
        "python": random.getstate(),
        "numpy": {
            "kind": kind,
            "keys": torch.from_numpy(keys.astype(np.int64)),
            "pos": int(pos),
            "has_gauss": int(has_gauss),
            "cached": float(cached),
        },
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    n = state["numpy"]
    np.random.set_state(  # noqa: NPY002
        (n["kind"], n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["cached"])
    )
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
