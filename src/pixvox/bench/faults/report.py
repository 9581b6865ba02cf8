"""``docs/reliability_campaign.md``: the campaign's figures as tables, from the JSON document."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from pixvox.bench.faults.procs import strip_progress
from pixvox.io.atomic import atomic_write_text

LIMITS = [
    "- Bit-for-bit equality is measured for CPU, one compute thread and 0 data workers only. Several "
    "threads, data workers and GPUs were not checked here (GPU kernels may accumulate in another order "
    "from run to run, so there a resumed run may match only to rounding).",
    "- Readers covered: ScanNet `.sens`, RGB-D sequences (Redwood/ICL layout; the other layouts share the "
    "frame reading), exported frames (fusion), ScanNet PLY meshes, mmdetection3d arrays, Pointcept folders, "
    "fusion samples, configs, checkpoints. Not covered here: the SUN RGB-D and S3DIS preparers.",
    "- Kill points drawn in time land mostly in training steps; the write-delay hook is what puts kills "
    "inside checkpoint and data-file writes (it only sleeps before the rename; it changes no content).",
    "- The NaN and empty-batch cases need the trainer's `PIXVOX_FAULT_NAN_STEPS` hook (issue 14 item 1); "
    "`not available` means this checkout's trainer has none, not a failure.",
]


def _message(c: dict[str, Any]) -> str:
    """A case's message for the table: no progress bars, the scratch folder as ``<work>``, 220 chars."""
    text = strip_progress(c.get("message") or c.get("why", "")).strip()
    return re.sub(r"/tmp/pixvox_faults_\w+", "<work>", text)[:220]


def _row(cells: list[Any]) -> str:
    return "| " + " | ".join(str(c).replace("|", "\\|").replace("\n", " ") for c in cells) + " |"


def write_markdown(doc: dict[str, Any], path: Path) -> None:
    m = doc["machine"]
    lines = [
        "# Reliability: the fault and bad-input campaign",
        "",
        f"Made by `{doc['command']}` ({doc['date']}, {doc['seconds']:.0f} s wall and {doc.get('cpu_seconds', '?')} CPU "
        f"seconds on {m['cpus']} CPUs, load average "
        f"{m.get('load_average_start', ['?'])[0]} at the start and {m['load_average_end'][0]} at the end; "
        "other work shared the machine). The numbers below are copied from `docs/reliability.json`.",
        "",
        "| figure | value |",
        "| --- | --- |",
        _row(["kill points (kill -9, then `--resume auto`)", doc["kill_points"]]),
        _row(["kill points whose final weights equal the uninterrupted run's bit for bit", doc["kill_points_identical"]]),
        _row(["kill points inside an atomic write (checkpoint or data file)", doc["kill_points_in_atomic_writes"]]),
        _row(["bad inputs tried", doc["bad_inputs_tried"]]),
        _row(["bad inputs handled cleanly", doc["bad_inputs_clean"]]),
        _row(["partial outputs found", doc["partial_outputs_found"]]),
        "",
        "## Method",
        "",
        "Kill points: each workload (`pixvox pretrain --prepare-data` making a 2-room synthetic dataset; "
        "a tiny PPKT pretraining run; a tiny fine-tuning run initialized from the reference pretraining run) "
        "is run once uninterrupted as the reference, then started again and killed with SIGKILL at a drawn "
        "point: `time` kills fall uniformly in the first 85% of the reference's working time (from the "
        "first logged step; from the output folder's creation for data preparation); `write` kills land inside the j-th atomic write (j drawn), "
        "held open by the testing hook `PIXVOX_FAULT_WRITE_DELAY` (pixvox.io.atomic). After the kill every "
        "file under its final name must read as its kind and equal the reference's file (checkpoints: equal "
        "tensors); then the run is resumed with `--resume auto` to the end and its final checkpoint (model, "
        "optimizer, student tensors) must equal the reference's bit for bit, every other file byte for byte "
        "(except those holding timings). " + doc["settings"]["threads"] + ", "
        f"{doc['settings']['data_workers']} data workers, CPU.",
        "",
        "Bad inputs: each case copies a small piece of `../shared/data` into a temporary folder, damages it and "
        "runs the real `pixvox` command on it as a subprocess. Clean: no Python traceback, and either status 2 "
        "with a message naming the damaged file, or the item skipped, counted and named in the log; and no "
        "output that reads as complete while holding the damaged item.",
        "",
        "## Kill points",
        "",
        _row(["workload", "kill", "after (s)", "phase", "checkpoint at kill", "partial files after kill",
              "temp files after kill", "temp files after resume", "final weights identical"]),
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]  # fmt: skip
    for t in doc["kills"]:
        lines.append(
            _row([t["workload"], t["mode"], t["killed_after_s"], t["phase"], t["checkpoint_at_kill"] or "-",
                  len(t["after_kill"]["partial"]), t["after_kill"]["temp_files"], t["temp_files_after_resume"],
                  "yes" if t["final_identical"] else "**no**"])
        )  # fmt: skip
    lines += [
        "",
        "## Bad inputs",
        "",
        _row(["input", "command", "status", "outcome", "clean", "message (last line)"]),
    ]
    lines.append("| --- | --- | --- | --- | --- | --- |")
    for c in doc["bad_inputs"]:
        clean = {True: "yes", False: "**no**", None: "-"}[c.get("clean")]
        lines.append(_row([c["input"], c["reader"], c.get("returncode", "-"), c["outcome"], clean,
                           _message(c)]))  # fmt: skip
    lines += ["", "## NaN losses and empty batches", ""]
    lines.append(_row(["case", "status", "outcome", "clean", "message"]))
    lines.append("| --- | --- | --- | --- | --- |")
    for c in doc["nonfinite_cases"]:
        clean = {True: "yes", False: "**no**", None: "-"}[c.get("clean")]
        lines.append(
            _row(
                [
                    c["input"],
                    c.get("returncode", "-"),
                    c["outcome"],
                    clean,
                    _message(c),
                ]
            )
        )
    lines += ["", "## Scope and limits", "", *LIMITS]
    atomic_write_text(path, "\n".join(lines) + "\n")
