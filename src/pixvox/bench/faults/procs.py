"""Running the real ``pixvox`` command as a subprocess, and judging what a run left on disk.

:func:`pixvox` runs ``python -m pixvox VERB ...`` (the installed command's code path) with one
compute thread; :func:`start` does the same in the background for a kill. :func:`scan_outputs`
looks at every file a run left under its final name (temporary files of interrupted atomic writes
are not: readers never take them) and reports the ones a reader would accept although they are
not complete: a file that does not parse, or whose bytes (tensors, for checkpoints) differ from
the same file of an uninterrupted reference run.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import numpy as np

from pixvox.io.atomic import FAULT_WRITE_DELAY_ENV, is_temp_file

TRACEBACK = "Traceback (most recent call last)"
#: Files whose content legitimately differs between two runs (timings, throughput); they must parse.
VOLATILE = {"summary.json", "metrics.jsonl", "dataset.json", "curves.png", "confusion.png"}


#: the testing hook of the trainer (another branch): comma-separated steps whose loss becomes NaN
FAULT_NAN_ENV = "PIXVOX_FAULT_NAN_STEPS"


_PROGRESS = re.compile(r"[^\s|]*:?\s*\d+%\|[^|]*\|[^\]\n]*\]")


def strip_progress(text: str) -> str:
    """``text`` without tqdm progress bars (``desc: 50%|#####     | 1/2 [00:00<...]``)."""
    return _PROGRESS.sub("", text)


def pixvox_env(write_delay: str | None = None, extra: dict[str, str] | None = None) -> dict[str, str]:
    """The environment of a subprocess: one compute thread (bit-exact CPU runs), no wandb, no hooks
    but the ones asked for."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1", "WANDB_MODE": "disabled"}
    for key in ("PIXVOX_DEBUG", FAULT_WRITE_DELAY_ENV, FAULT_NAN_ENV):
        env.pop(key, None)
    if write_delay:
        env[FAULT_WRITE_DELAY_ENV] = write_delay
    env.update(extra or {})
    return env


def command(args: list[str]) -> list[str]:
    return [sys.executable, "-m", "pixvox", *args]


@dataclass
class Result:
    """A finished ``pixvox`` subprocess: exit status, output, seconds."""

    args: list[str]
    returncode: int
    stdout: str
    stderr: str
    seconds: float

    @property
    def traceback(self) -> bool:
        return TRACEBACK in self.stderr or TRACEBACK in self.stdout


def pixvox(
    args: list[str],
    cwd: Path,
    timeout: float = 600,
    write_delay: str | None = None,
    extra_env: dict[str, str] | None = None,
) -> Result:
    """Run ``pixvox ARGS`` to its end in ``cwd``."""
    t0 = time.perf_counter()
    env = pixvox_env(write_delay, extra_env)
    p = subprocess.run(command(args), cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    return Result(args, p.returncode, p.stdout, p.stderr, time.perf_counter() - t0)


def start(
    args: list[str], cwd: Path, write_delay: str | None = None, output: IO[str] | None = None
) -> subprocess.Popen:
    """Start ``pixvox ARGS`` in the background for a kill (output to ``output``, else discarded)."""
    sink = output if output is not None else subprocess.DEVNULL
    return subprocess.Popen(
        command(args),
        cwd=cwd,
        env=pixvox_env(write_delay),
        stdout=sink,
        stderr=subprocess.STDOUT if output else sink,
    )


# ---------------------------------------------------------------------- what a run left behind
@dataclass
class Scan:
    """Files under final names that a reader would take although they are incomplete or wrong."""

    files: int = 0
    temp_files: int = 0  #: leftovers of interrupted atomic writes (hidden; no reader lists them)
    partial: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {"files": self.files, "temp_files": self.temp_files, "partial": self.partial}


def _parses(path: Path) -> str | None:
    """Why ``path`` is not a complete file of its kind (None if it reads)."""
    suffix = path.suffix.lower()
    try:
        if suffix == ".json":
            json.loads(path.read_text())
        elif suffix == ".jsonl":
            for line in path.read_text().splitlines():
                if line.strip():
                    json.loads(line)
            if path.stat().st_size and not path.read_bytes().endswith(b"\n"):
                return "last line not terminated"
        elif suffix == ".npz":
            with np.load(path) as z:
                for k in z.files:
                    z[k]
        elif suffix == ".npy":
            np.load(path)
        elif suffix in (".png", ".jpg", ".jpeg"):
            from PIL import Image

            with Image.open(path) as im:
                im.load()
        elif suffix == ".pt":
            import torch

            torch.load(path, map_location="cpu", weights_only=True)
        elif suffix in (".yaml", ".yml"):
            import yaml

            yaml.safe_load(path.read_text())
    except Exception as err:  # noqa: BLE001 - any failure to read is what we look for
        return f"{type(err).__name__}: {str(err)[:120]}"
    return None


def same_checkpoint(a: Path, b: Path) -> bool:
    """Bytes equal, or else every tensor of the model, optimizer and student entries equal."""
    if a.read_bytes() == b.read_bytes():
        return True
    import torch

    sa = torch.load(a, map_location="cpu", weights_only=True)
    sb = torch.load(b, map_location="cpu", weights_only=True)
    return sa["step"] == sb["step"] and all(
        tensors_equal(sa.get(k), sb.get(k)) for k in ("model", "student", "optimizer")
    )


def tensors_equal(a: Any, b: Any) -> bool:
    """Nested dicts/lists of tensors and numbers, compared exactly (bit for bit for tensors)."""
    import torch

    if isinstance(a, torch.Tensor) or isinstance(b, torch.Tensor):
        return (
            isinstance(a, torch.Tensor)
            and isinstance(b, torch.Tensor)
            and a.dtype == b.dtype
            and a.shape == b.shape
            and torch.equal(a, b)
        )
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(tensors_equal(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(tensors_equal(x, y) for x, y in zip(a, b))
    return a == b


def scan_outputs(folder: Path, reference: Path | None = None) -> Scan:
    """Every file under ``folder``: it must read as its kind, and equal ``reference``'s same file
    (checkpoints: equal tensors) unless its content varies between runs (:data:`VOLATILE`)."""
    scan = Scan()
    if not folder.exists():
        return scan
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        if "wandb" in path.parts:
            continue
        if is_temp_file(path):
            scan.temp_files += 1
            continue
        scan.files += 1
        rel = path.relative_to(folder)
        why = _parses(path)
        if why is None and reference is not None and path.name not in VOLATILE:
            ref = reference / rel
            if ref.is_file():
                equal = (
                    same_checkpoint(path, ref)
                    if path.suffix == ".pt"
                    else path.read_bytes() == ref.read_bytes()
                )
                if not equal:
                    why = "differs from the uninterrupted run's file"
        if why is not None:
            scan.partial.append(f"{rel}: {why}")
    return scan
