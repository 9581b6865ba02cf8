"""The ablation table of docs/transfer.md: one row per screened change, kept or dropped by the number.

A row is made by ``tools/transfer_bench.py --ablation NAME --set KEY=VALUE ...``: the same benchmark
with the change applied to every arm. It records the change's ``ppkt`` and ``random_teacher`` probe
mIoU, their paired difference, and ``ppkt`` with the change minus the reference ``ppkt`` (paired by
seed): the main run's when the step budget is the same, else an earlier row with that budget and no
``--set`` (a longer-pretraining row is the reference of changes screened at its length), else the
main run's again (the budget is then part of the change). Rows live
in ``docs/transfer_ablations.json``; the report renders them. A row's optional ``note``
is the reader's summary, written by hand into the JSON.

A fine-tuning recipe change (``--ablation NAME --finetune-set KEY=VALUE ...`` or ``--finetune-steps``,
pretraining unchanged) makes a row of ``kind: finetune`` instead, rendered in its own table: per label
budget, scratch and ``ppkt`` fine-tuned with the change, their paired difference, and each init against
the same init and seeds under the main run's recipe. It is kept when ``ppkt`` fine-tuned with it beats
``ppkt`` under the main recipe with a 95% interval above 0 at every budget it measured: a recipe is
chosen for what it does to the pretrained network, not for the gap it leaves to scratch.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pixvox.bench.transfer.stats import Interval, paired_difference, per_seed, t_interval
from pixvox.io.atomic import atomic_write_json

FILE = "transfer_ablations.json"


def _iv(d: dict | None) -> Interval | None:
    if not d:
        return None
    nan = float("nan")
    return Interval(
        *(nan if d.get(k) is None else d[k] for k in ("mean", "low", "high")), d["n"], d["sd"] or nan
    )


def _fmt(d: dict | None, signed: bool = False, digits: int = 1) -> str:
    """A stored interval for a table cell: a signed difference, or a mean in % with its interval."""
    i = _iv(d)
    if i is None:
        return "—"
    if signed:
        return i.describe(digits=digits)
    if i.n < 2:
        return f"{100 * i.mean:.{digits}f} (n={i.n})"
    return f"{100 * i.mean:.{digits}f} [{100 * i.low:.{digits}f}, {100 * i.high:.{digits}f}]"


def _kind(row: dict) -> str:
    """``pretrain`` (rows made before fine-tuning rows existed have no ``kind``) or ``finetune``."""
    return row.get("kind", "pretrain")


def ablation_row(
    name: str,
    command: str,
    result: dict[str, Any],
    baseline: dict[str, Any] | None,
    rows: Sequence[dict] = (),
) -> dict:
    """The row of a finished ablation run ``result``; ``baseline``: the main run's JSON; ``rows``: the
    rows already in the table (for the reference, see the module doc)."""
    probe = result["probe"]
    ppkt, rt = per_seed(probe, "arm", arm="ppkt"), per_seed(probe, "arm", arm="random_teacher")
    row: dict[str, Any] = {
        "name": name,
        "command": command,
        "set": result["config"].get("overrides", []),
        "steps": result["config"]["steps"],
        "seeds": result["config"]["seeds"],
        "ppkt": t_interval(list(ppkt.values())).to_json(),
        "random_teacher": t_interval(list(rt.values())).to_json(),
        "ppkt_minus_random_teacher": paired_difference(ppkt, rt)[0].to_json(),
    }
    ret = result.get("retrieval", [])
    top1 = {a: per_seed(ret, "arm", "top1", arm=a) for a in ("ppkt", "random_teacher")}
    if all(top1.values()):
        row["top1_ppkt"] = t_interval(list(top1["ppkt"].values())).to_json()
        row["top1_random_teacher"] = t_interval(list(top1["random_teacher"].values())).to_json()
        row["top1_ppkt_minus_random_teacher"] = paired_difference(top1["ppkt"], top1["random_teacher"])[
            0
        ].to_json()
    row["ppkt_per_seed"] = {str(k): v for k, v in ppkt.items()}
    ref = reference(row, baseline, rows)
    if ref is not None:
        row["reference"] = ref[0]
        row["ppkt_minus_baseline_ppkt"] = paired_difference(ppkt, ref[1])[0].to_json()
    return row


def reference(row: dict, baseline: dict[str, Any] | None, rows: Sequence[dict]) -> tuple[str, dict] | None:
    """(name, per-seed ppkt probe mIoU) of the run ``row`` is compared with (see the module doc)."""
    if baseline is not None and baseline["config"]["steps"] == row["steps"]:
        return main_run_label(baseline), per_seed(baseline["probe"], "arm", arm="ppkt")
    for r in rows:
        if (
            _kind(r) == "pretrain"
            and r["name"] != row["name"]
            and r["steps"] == row["steps"]
            and not r["set"]
            and r.get("ppkt_per_seed")
        ):
            return r["name"], {int(k): v for k, v in r["ppkt_per_seed"].items()}
    if baseline is not None:  # no plain run at this budget: the budget itself is (part of) the change
        return main_run_label(baseline), per_seed(baseline["probe"], "arm", arm="ppkt")
    return None


def main_run_label(baseline: dict[str, Any]) -> str:
    """Names the main run a row was compared with, so the row stays readable after a new main run."""
    c = baseline["config"]
    mode = "quick mode, " if c.get("quick") else ""
    # the main run is remade now and then (git log docs/transfer.json): say which one
    made = f" of {baseline['date'][:10]}" if baseline.get("date") else ""
    return f"main run{made}, {mode}{c['steps']} steps"


def kept(row: dict) -> bool:
    """Kept when the change's ppkt beats the reference ppkt with a 95% interval above 0."""
    d = _iv(row.get("ppkt_minus_baseline_ppkt"))
    return bool(d is not None and d.low > 0)


def finetune_row(name: str, command: str, result: dict[str, Any], baseline: dict[str, Any] | None) -> dict:
    """The row of a fine-tuning recipe ablation (see the module doc); ``baseline``: the main run's JSON."""
    c, ft = result["config"], result["finetune"]
    row: dict[str, Any] = {
        "kind": "finetune",
        "name": name,
        "command": command,
        "finetune_set": c.get("finetune_overrides", []),
        "finetune_steps": c["finetune_steps"],
        "budgets": {},
    }
    main_ft = baseline["finetune"] if baseline is not None else []
    for b in sorted({r["budget"] for r in ft}):
        cur = {init: per_seed(ft, "init", init=init, budget=b) for init in ("scratch", "ppkt")}
        entry = {init: t_interval(list(v.values())).to_json() for init, v in cur.items()} | {
            "ppkt_minus_scratch": paired_difference(cur["ppkt"], cur["scratch"])[0].to_json()
        }
        for init, v in cur.items():
            ref = per_seed(main_ft, "init", init=init, budget=b)
            if set(ref) & set(v):
                entry[f"{init}_minus_main"] = paired_difference(v, ref)[0].to_json()
        row["budgets"][str(b)] = entry
    if baseline is not None:
        row["reference"] = (
            f"{main_run_label(baseline)}, {baseline['config']['finetune_steps']} fine-tuning steps"
        )
    return row


def finetune_kept(row: dict) -> bool:
    """Kept when ppkt fine-tuned with the change beats ppkt under the main recipe at every budget."""
    diffs = [_iv(e.get("ppkt_minus_main")) for e in row["budgets"].values()]
    return bool(diffs) and all(d is not None and d.low > 0 for d in diffs)


def finetune_table(rows: Sequence[dict]) -> list[str]:
    """The markdown table of the fine-tuning recipe rows (empty without any)."""
    rows = [r for r in rows if _kind(r) == "finetune"]
    if not rows:
        return []

    L = [
        "",
        "### Fine-tuning recipe",
        "",
        "| change | steps | points / room | scratch | ppkt | ppkt − scratch | scratch − main recipe | "
        "ppkt − main recipe | kept? |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        change = f"{r['name']} (`{' '.join(r['finetune_set'])}`)" if r["finetune_set"] else r["name"]
        verdict = "kept" if finetune_kept(r) else "dropped"
        for b, e in r["budgets"].items():
            L.append(
                f"| {change} | {r['finetune_steps']} | {b} | {_fmt(e['scratch'])} | {_fmt(e['ppkt'])} | "
                f"{_fmt(e['ppkt_minus_scratch'], True)} | {_fmt(e.get('scratch_minus_main'), True)} | "
                f"{_fmt(e.get('ppkt_minus_main'), True)} | {verdict} |"
            )
    notes = [f"- {r['name']}: {r['note']}" for r in rows if r.get("note")]
    L += ["", *notes, *([""] if notes else [])]
    L += [
        "Commands: " + "; ".join(f"`{r['command']}`" for r in rows),
        "",
        "A recipe change is kept when `ppkt` fine-tuned with it beats `ppkt` under the main recipe (same "
        "seeds, so the same labeled points) with a 95% interval above 0 at every budget measured; add a "
        "row with `python tools/transfer_bench.py --ablation NAME --arms ppkt --finetune-set KEY=VALUE ...`.",
    ]
    return L


def load_rows(docs: Path) -> list[dict]:
    path = docs / FILE
    return json.loads(path.read_text()) if path.is_file() else []


def save_row(docs: Path, row: dict) -> None:
    """Add ``row`` to the ablations file (replacing a row of the same name)."""
    rows = [r for r in load_rows(docs) if r["name"] != row["name"]] + [row]
    # notes are hand-written with −, ×, τ: keep them readable in the file (and its diffs)
    atomic_write_json(docs / FILE, rows, ensure_ascii=False)


def table(rows: Sequence[dict], baseline_lines: list[str]) -> list[str]:
    """The markdown table: the main run's row first, then one row per pretraining ablation."""
    rows = [r for r in rows if _kind(r) == "pretrain"]

    L = [
        "| change | steps | ppkt probe mIoU | random_teacher probe mIoU | ppkt − random_teacher | "
        "ppkt − reference ppkt (reference) | held-out top-1 % ppkt / random_teacher (difference) | kept? |",
        "|---|---|---|---|---|---|---|---|",
        *baseline_lines,
    ]
    for r in rows:
        overrides = " ".join(r["set"])
        change = f"{r['name']} (`{overrides}`)" if overrides else r["name"]
        L.append(
            f"| {change} | {r['steps']} | {_fmt(r['ppkt'])} | {_fmt(r['random_teacher'])} | "
            f"{_fmt(r['ppkt_minus_random_teacher'], True)} | {_fmt(r.get('ppkt_minus_baseline_ppkt'), True)} ({r.get('reference', 'none')}) | "
            f"{_fmt(r.get('top1_ppkt'), digits=2)} / {_fmt(r.get('top1_random_teacher'), digits=2)} "
            f"({_fmt(r.get('top1_ppkt_minus_random_teacher'), True, 2)}) | {'kept' if kept(r) else 'dropped'} |"
        )
    notes = [f"- {r['name']}: {r['note']}" for r in rows if r.get("note")]
    if notes:
        L += ["", *notes]
    if rows:
        L += ["", "Commands: " + "; ".join(f"`{r['command']}`" for r in rows)]
    return L
