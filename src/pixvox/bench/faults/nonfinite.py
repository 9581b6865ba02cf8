"""NaN losses and empty batches mid-run, through the trainer's testing hook ``PIXVOX_FAULT_NAN_STEPS``.

The hook and the skip counting (``train.max_nonfinite_steps``, ``skipped_nonfinite``) belong to the
trainer (issue 14 item 1/2, another branch). Where this checkout's trainer lacks them the cases
report ``not available``, which is not a failure. Where it has them: a NaN at one step must be
skipped and counted while the run finishes (status 0); NaNs at every step must stop the run after
``train.max_nonfinite_steps`` with a user error (status 2) and no traceback; a run whose batches hold
no pixel-to-voxel pairs (every sample's depth zeroed) must skip and count them, or stop the same way.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path
from typing import Any

import numpy as np

import pixvox
from pixvox.bench.faults.procs import FAULT_NAN_ENV
from pixvox.bench.faults.procs import pixvox as run_pixvox
from pixvox.bench.faults.runs import pretrain_args
from pixvox.io.atomic import atomic_save_npz, atomic_write_json

PACKAGE = Path(pixvox.__file__).resolve().parent


def hook_available() -> bool:
    """Whether the trainer reads ``PIXVOX_FAULT_NAN_STEPS`` (searched in the engine's source)."""
    return any(FAULT_NAN_ENV in p.read_text() for p in (PACKAGE / "engine").glob("*.py"))


def _counted(run: Path) -> int:
    """The largest ``skipped*`` count the run recorded (summary.json or metrics.jsonl)."""
    best = 0
    for name in ("summary.json", "metrics.jsonl"):
        path = run / name
        if path.is_file():
            for m in re.finditer(r'"(skipped[a-z_]*)":\s*([0-9.]+)', path.read_text()):
                best = max(best, int(float(m.group(2))))
    return best


def _zero_depths(src: Path, dst: Path) -> Path:
    """A copy of the fusions whose depth images are all 0: no pixel matches a voxel, every batch is empty.
    The index's SHA-256 records are updated, so the files read as intact."""
    shutil.copytree(src, dst)
    index = json.loads((dst / "index.json").read_text())
    for rec in index["samples"]:
        p = dst / rec["file"]
        with np.load(p) as z:
            arrays = {k: z[k] for k in z.files}
        arrays["depths"] = np.zeros_like(arrays["depths"])
        rec["sha256"] = atomic_save_npz(p, arrays)
    atomic_write_json(dst / "index.json", index)
    return dst


def run_nonfinite_cases(fusions: Path, work: Path) -> list[dict[str, Any]]:
    names = ["NaN loss at one step", "NaN loss at every step", "only empty batches (no pairs)"]
    if not hook_available():
        return [
            {"input": n, "reader": "pixvox pretrain", "outcome": "not available", "clean": None,
             "why": f"this trainer has no {FAULT_NAN_ENV} hook (issue 14 item 1, another branch)"}
            for n in names
        ]  # fmt: skip
    out: list[dict[str, Any]] = []
    runs = work / "nonfinite"
    shutil.rmtree(runs, ignore_errors=True)
    runs.mkdir(parents=True)
    empty = _zero_depths(fusions, runs / "empty_fusions")
    plans = [
        (names[0], fusions, {FAULT_NAN_ENV: "3"}, {}, 0),
        (names[1], fusions, {FAULT_NAN_ENV: ",".join(str(s) for s in range(0, 12))}, {"train.max_nonfinite_steps": "3"}, 2),
        (names[2], empty, {}, {"train.max_nonfinite_steps": "3"}, None),
    ]  # fmt: skip
    for i, (name, data, env, extra, want) in enumerate(plans):
        args = pretrain_args(data, runs, f"case{i}", 6, 3, **extra)
        r = run_pixvox([*args, "--resume", "none"], runs, timeout=300, extra_env=env)
        counted = _counted(runs / f"case{i}")
        if r.traceback:
            outcome = "traceback"
        elif r.returncode == 2:
            outcome = "stopped with a user error"
        elif r.returncode == 0 and counted:
            outcome = f"survived, {counted} skipped steps counted"
        else:
            outcome = f"exit {r.returncode}, {counted} skips counted"
        clean = not r.traceback and (r.returncode == want if want is not None else r.returncode in (0, 2))
        clean = clean and (r.returncode != 0 or counted > 0)
        last = [ln for ln in r.stderr.strip().splitlines() if ln.strip()]
        out.append({"input": name, "reader": "pixvox pretrain", "returncode": r.returncode, "outcome": outcome,
                    "clean": clean, "message": (last[-1] if last else "")[:400], "seconds": round(r.seconds, 1)})  # fmt: skip
    return out
