"""Running a bad-input case and judging its outcome (the definition of clean: pixvox.bench.faults.cases)."""

from __future__ import annotations

import re
import shutil
from typing import Any

from pixvox.bench.faults.cases import Case, Context, Setup, read_json
from pixvox.bench.faults.procs import Result, pixvox, scan_outputs, strip_progress


def judge(case: Case, setup: Setup, r: Result) -> dict[str, Any]:
    """The outcome of one case (see the module docstring)."""
    text = r.stderr + r.stdout
    named = setup.named.name in text
    skip_record = any(
        isinstance(read_json(p), dict) and read_json(p).get("skipped")
        for out in setup.outputs
        for p in (out.rglob("*.json") if out.exists() else [])
    )
    failed_line = r.returncode == 1 and "failed" in r.stderr
    scans = [scan_outputs(out) for out in setup.outputs]
    partial = [p for s in scans for p in s.partial]
    if setup.accepted():
        partial.append(f"the damaged {setup.named.name} is listed as good in the output")
    if r.traceback:
        outcome = "traceback"
    elif r.returncode == 2:
        outcome = "user error" if named else "user error, file not named"
    elif r.returncode in (0, 1) and (skip_record or failed_line):
        outcome = "counted skip" if named else "skip, file not named"
    elif r.returncode == 0:
        outcome = "accepted"
    else:
        outcome = f"exit {r.returncode}"
    clean = outcome in ("user error", "counted skip") and not partial
    # progress bars redraw with \r: split on it too, so a message is one log record
    lines = [ln.strip() for ln in re.split(r"[\r\n]", strip_progress(r.stderr)) if ln.strip()]
    naming = [ln for ln in lines if setup.named.name in ln]
    message = (naming or lines or [""])[-1]
    return {
        "input": case.input_class,
        "reader": case.reader,
        "command": "pixvox " + " ".join(r.args[:3]) + " ...",
        "returncode": r.returncode,
        "outcome": outcome,
        "clean": clean,
        "named_file": named,
        "partial_outputs": partial,
        "message": message[:400],
        "seconds": round(r.seconds, 1),
    }


def run_case(case: Case, ctx: Context, index: int) -> dict[str, Any]:
    tmp = ctx.work / "bad_inputs" / f"{index:02d}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    missing = [k for k in case.needs if k not in ctx.refs]
    if missing:
        return {"input": case.input_class, "reader": case.reader, "outcome": "not run", "clean": None,
                "why": f"needs the campaign's {missing}"}  # fmt: skip
    try:
        setup = case.build(tmp, ctx)
    except Exception as err:  # noqa: BLE001 - a broken case is reported, the campaign goes on
        return {"input": case.input_class, "reader": case.reader, "outcome": "case could not be built",
                "clean": False, "why": f"{type(err).__name__}: {err}"}  # fmt: skip
    result = judge(case, setup, pixvox(setup.args, tmp, timeout=300))
    result["message"] = result["message"].replace(str(ctx.work), "<work>")
    shutil.rmtree(tmp, ignore_errors=True)
    return result
