"""``kill -9`` at random points of tiny CPU runs, then ``--resume auto`` to the end.

Three workloads, each first run once without interruption as the reference (at the same path the
trials use, then moved aside, so paths recorded inside files agree):

- ``prepare``: ``pixvox pretrain --prepare-data`` generating the synthetic default dataset (frames,
  labeled clouds) and fusing it;
- ``pretrain``: a tiny PPKT pretraining run on those fusions (checkpoint every few steps);
- ``finetune``: a tiny fine-tuning run on the synthetic labeled clouds, initialized from the
  reference pretraining run.

A trial starts the workload, kills it (SIGKILL) at a drawn point, scans what it left
(:func:`pixvox.bench.faults.procs.scan_outputs`), reruns it with ``--resume auto`` to the end and
compares the result with the reference: the final checkpoint's tensors (model, optimizer, student)
bit for bit, and every other file byte for byte except those that hold timings. Kill points are
drawn two ways: ``time`` (uniform over the first 85% of the reference's working time: from the
first logged step, or from the creation of the output folder for ``prepare``) and ``write`` (the
testing hook ``PIXVOX_FAULT_WRITE_DELAY`` holds each atomic write open, and the kill lands inside
the j-th write, j drawn at random).
Every run uses 1 compute thread and 0 data workers.
"""

from __future__ import annotations

import shutil
import signal
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from pixvox.bench.faults.procs import Result, pixvox, same_checkpoint, scan_outputs, start
from pixvox.io.atomic import is_temp_file

#: seconds the testing hook holds each atomic write of a checkpoint (training) or data file (prepare)
CHECKPOINT_DELAY = 0.6
DATA_DELAY = 0.04
POLL = 0.01  # seconds


@dataclass
class Workload:
    name: str
    args: list[str]  #: ``pixvox`` arguments without ``--resume``
    out: Path  #: the folder it writes (scanned after each kill)
    reference: Path  #: where the uninterrupted run's folder is kept
    write_glob: str  #: file names whose atomic writes the hook slows
    write_delay: float
    expected_writes: int  #: writes of ``write_glob`` files in a whole run (the range j is drawn in)
    started_marker: str | None  #: a file whose appearance means training began (time kills start there)
    span: float = 0.0  #: seconds of the reference run the time kills are drawn over

    @property
    def training(self) -> bool:
        return self.name != "prepare"


def _final_checkpoint(folder: Path) -> Path | None:
    found = sorted((folder / "checkpoints").glob("step_*.pt"))
    return found[-1] if found else None


def _temp_names(folder: Path, glob: str) -> set[str]:
    if not folder.exists():
        return set()
    names = set()
    for p in folder.rglob(".*"):
        if is_temp_file(p) and Path(p.name[1:].split(".tmp-")[0]).match(glob):
            names.add(p.name)
    return names


def run_reference(w: Workload, cwd: Path) -> Result:
    """The uninterrupted run, made at ``w.out`` then moved to ``w.reference``. Sets ``w.span``: the
    seconds from the appearance of ``w.started_marker`` (of the output folder without one) to the
    end, the window the time kills are drawn in."""
    shutil.rmtree(w.out, ignore_errors=True)
    shutil.rmtree(w.reference, ignore_errors=True)
    log = cwd / f"reference_{w.name}.log"
    t0 = time.perf_counter()
    with open(log, "w") as f:
        proc = start([*w.args, "--resume", "none"] if w.training else w.args, cwd, output=f)
        marker = w.out / w.started_marker if w.started_marker else w.out
        seen = None
        while proc.poll() is None:
            if seen is None and marker.exists():
                seen = time.perf_counter()
            time.sleep(POLL)
    seconds = time.perf_counter() - t0
    text = log.read_text()
    if proc.returncode != 0:
        raise RuntimeError(f"reference {w.name} run failed ({proc.returncode}):\n{text[-3000:]}")
    w.span = time.perf_counter() - (seen or t0)
    w.out.rename(w.reference)
    return Result(w.args, proc.returncode, text, "", seconds)


def _wait_and_kill(proc, w: Workload, mode: str, rng: np.random.Generator) -> tuple[bool, float]:
    """Kill ``proc`` at the drawn point; returns (landed before the run ended, seconds after start)."""
    t0 = time.perf_counter()
    if mode == "write":
        target = int(rng.integers(1, w.expected_writes + 1))
        seen: set[str] = set()
        while proc.poll() is None and len(seen) < target:
            seen |= _temp_names(w.out, w.write_glob)
            time.sleep(POLL)
        if proc.poll() is None:
            time.sleep(float(rng.uniform(0.0, 0.7 * w.write_delay)))
    else:
        marker = w.out / w.started_marker if w.started_marker else w.out
        while proc.poll() is None and not marker.exists():
            time.sleep(POLL)
        deadline = time.perf_counter() + float(rng.uniform(0.0, 0.85 * w.span))  # margin: runs vary
        while proc.poll() is None and time.perf_counter() < deadline:
            time.sleep(POLL)
    landed = proc.poll() is None
    if landed:
        proc.send_signal(signal.SIGKILL)
    proc.wait()
    return landed, time.perf_counter() - t0


def trial(w: Workload, mode: str, cwd: Path, rng: np.random.Generator) -> dict[str, Any]:
    """One kill point: start, kill, scan, resume to the end, compare with the reference."""
    shutil.rmtree(w.out, ignore_errors=True)
    delay = f"{w.write_delay}:{w.write_glob}" if mode == "write" else None
    proc = start([*w.args, "--resume", "none"] if w.training else w.args, cwd, write_delay=delay)
    landed, at = _wait_and_kill(proc, w, mode, rng)
    after_kill = scan_outputs(w.out, w.reference)
    in_write = bool(_temp_names(w.out, "*"))
    ck = _final_checkpoint(w.out) if w.training else None
    if not w.training:
        phase = "data preparation, inside an atomic write" if in_write else "data preparation"
    elif in_write:
        phase = (
            "inside an atomic write (checkpoint)"
            if _temp_names(w.out, "step_*.pt")
            else "inside an atomic write"
        )
    elif w.started_marker and not (w.out / w.started_marker).exists():
        phase = "start-up (before the first step)"
    else:
        phase = "training"
    resumed = pixvox([*w.args, "--resume", "auto"] if w.training else w.args, cwd)
    final = scan_outputs(w.out, w.reference)
    missing = sorted(
        str(p.relative_to(w.reference))
        for p in w.reference.rglob("*")
        if p.is_file() and not (w.out / p.relative_to(w.reference)).exists()
    )
    if w.training:
        mine, ref = _final_checkpoint(w.out), _final_checkpoint(w.reference)
        identical = bool(mine and ref and mine.name == ref.name and same_checkpoint(mine, ref))
    else:
        identical = not final.partial and not missing
    return {
        "workload": w.name,
        "mode": mode,
        "landed": landed,
        "killed_after_s": round(at, 2),
        "phase": phase,
        "checkpoint_at_kill": ck.name if ck else None,
        "after_kill": after_kill.as_dict(),
        "resume_returncode": resumed.returncode,
        "resume_error": resumed.stderr[-800:] if resumed.returncode else "",
        "final_identical": identical and resumed.returncode == 0,
        "final_differences": final.partial + [f"{m}: missing" for m in missing],
        "temp_files_after_resume": final.temp_files,
    }


def run_trials(w: Workload, n: int, cwd: Path, rng: np.random.Generator, log=print) -> list[dict[str, Any]]:
    """``n`` kill points alternating ``time`` and ``write`` kills; points that missed the run are redrawn
    (at most ``n`` extra tries)."""
    out: list[dict[str, Any]] = []
    tries = 0
    while len(out) < n and tries < 2 * n:
        mode = ("time", "write")[len(out) % 2]
        tries += 1
        t = trial(w, mode, cwd, rng)
        log(
            f"  {w.name:<9} {mode:<5} kill at {t['killed_after_s']:6.2f} s ({t['phase']}): "
            f"{'identical' if t['final_identical'] else 'DIFFERENT'}"
            f"{'' if t['landed'] else ' (run ended before the kill; redrawn)'}"
            f"{'; PARTIAL ' + str(t['after_kill']['partial']) if t['after_kill']['partial'] else ''}"
        )
        if t["landed"]:
            out.append(t)
    return out
