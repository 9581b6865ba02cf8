"""docs/transfer.md, docs/transfer.json and docs/images/transfer.png from a benchmark result.

Per (arm, seed) the probe figure is the mean mIoU over the test rooms; arms are compared by paired
differences over seeds (:mod:`.stats`). "Helps" is written only where a 95% interval excludes 0.
"""

from __future__ import annotations

import platform
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pixvox.bench.transfer import ablation, reproductions
from pixvox.bench.transfer.stats import Interval, paired_difference, per_seed, t_interval
from pixvox.io.atomic import atomic_write_json, atomic_write_text

BASELINE = "random"
PRODUCT = "ppkt"
CONTROLS = ("random_teacher", "no_color", "pointcontrast")
#: arms that are neither the floor, the product nor a control of it: compared with ppkt by the table
#: "Objectives against ppkt" (pointcontrast is also there: it is an objective as well as a control)
NOT_OBJECTIVES = (BASELINE, PRODUCT, "random_teacher", "no_color")


def summarize(result: dict[str, Any]) -> dict[str, Any]:
    """Intervals: probe mIoU per arm, paired differences, retrieval, fine-tuning gains, curve ends."""
    probe, arms = result["probe"], list(dict.fromkeys(r["arm"] for r in result["probe"]))
    by_arm = {a: per_seed(probe, "arm", arm=a) for a in arms}
    out: dict[str, Any] = {"probe": {a: t_interval(list(v.values())) for a, v in by_arm.items()}, "diff": {}}
    pairs = [("ppkt", a) for a in (BASELINE, *CONTROLS)] + [
        (a, BASELINE) for a in arms if a not in (BASELINE, "ppkt")
    ]
    for a, b in pairs:
        if a in by_arm and b in by_arm:
            out["diff"][f"{a} - {b}"] = paired_difference(by_arm[a], by_arm[b])[0]
    # every other objective against the product and the random-teacher control (paired by seed)
    out["objectives"] = {
        a: {
            f"minus_{b}": paired_difference(by_arm[a], by_arm[b])[0]
            for b in (PRODUCT, "random_teacher")
            if b in by_arm
        }
        for a in arms
        if a not in NOT_OBJECTIVES
    }
    ret = result["retrieval"]
    out["retrieval"] = {
        a: (
            t_interval(list(per_seed(ret, "arm", "top1", arm=a).values())),
            t_interval(list(per_seed(ret, "arm", "chance", arm=a).values())),
        )
        for a in dict.fromkeys(r["arm"] for r in ret)
    }
    if "ppkt" in by_arm and "random_teacher" in {r["arm"] for r in ret}:
        out["retrieval_diff"] = paired_difference(
            per_seed(ret, "arm", "top1", arm="ppkt"), per_seed(ret, "arm", "top1", arm="random_teacher")
        )[0]
    ft = result["finetune"]
    out["finetune"] = {}
    for b in sorted({r["budget"] for r in ft}):
        s = per_seed(ft, "init", init="scratch", budget=b)
        p = per_seed(ft, "init", init="ppkt", budget=b)
        # flattening: the mIoU change between the run's last two test-room evaluations
        last = [
            r["curve"][-1][1] - r["curve"][-2][1] for r in ft if r["budget"] == b and len(r["curve"]) >= 2
        ]
        out["finetune"][b] = {
            "scratch": t_interval(list(s.values())),
            "ppkt": t_interval(list(p.values())),
            "gain": paired_difference(p, s)[0],
            "last_change": t_interval(last),
        }
    return out


def _machine(result: dict[str, Any]) -> str:
    m = result.get("machine")
    if not m:
        return ""
    load = m["load_average"]
    cpu = f" ({m['cpu']}, torch {m['torch_cpu_capability']} kernels)" if "cpu" in m else ""
    return (
        f", {m['cpu_seconds'] / 60:.1f} CPU-min, {m['cores']} cores{cpu}, 1-minute load average "
        f"{load[0]} at the start and {load[1]} at the end"
    )


def _pct(i: Interval, digits: int = 1) -> str:
    if i.n < 2:
        return f"{100 * i.mean:.{digits}f} (n={i.n})"
    return f"{100 * i.mean:.{digits}f} [{100 * i.low:.{digits}f}, {100 * i.high:.{digits}f}]"


FLAT = 0.01  #: mIoU (fraction) a curve may still move between its last two evaluations and count as flat


def flat_verdict(change: Interval) -> str:
    """Whether fine-tuning curves had flattened, from the change between their last two evaluations."""
    if change.n < 2:
        return "unknown (fewer than 2 runs with two evaluations)"
    if -FLAT <= change.low and change.high <= FLAT:
        return f"yes, {change.describe()} points"
    return f"not shown: {change.describe()} points; longer fine-tuning (--finetune-steps) needed"


def _verdict(i: Interval, what: str) -> str:
    if i.n < 2:
        return "not measured (fewer than 2 seeds)"
    if i.low > 0:
        return f"{what}: yes, the interval excludes 0"
    if i.high < 0:
        return f"{what}: no, it is worse (the interval excludes 0 below)"
    return f"{what}: not shown (the interval includes 0)"


def targets(s: dict[str, Any]) -> list[str]:
    """Issue 11 item 5's three targets, each met or not, with the numbers."""
    lines = []
    p, r = s["probe"].get("ppkt"), s["probe"].get(BASELINE)
    if p and r:
        ratio = p.mean / r.mean if r.mean else float("nan")
        lines.append(
            f"- `ppkt` probe mIoU ≥ 2× `random`: {'met' if ratio >= 2 else 'NOT met'} ({ratio:.2f}×)"
        )
    d = s["diff"].get("ppkt - random_teacher")
    if d:
        ok = d.mean >= 0.03 and d.low > 0
        lines.append(
            f"- `ppkt` − `random_teacher` ≥ 3 mIoU, interval above 0: {'met' if ok else 'NOT met'} ({d.describe()})"
        )
    g = s["finetune"].get(20, {}).get("gain")
    if g:
        lines.append(
            f"- fine-tuning gain at 20 points, interval above 0: {'met' if g.low > 0 else 'NOT met'} ({g.describe()})"
        )
    return lines


def markdown(
    result: dict[str, Any],
    s: dict[str, Any],
    command: str,
    ablations: Sequence[dict] = (),
    reruns: Sequence[dict] = (),
) -> str:
    cfg = result["config"]
    mode = "quick" if cfg["quick"] else "default"
    L = ["# Transfer benchmark: does the 2D teacher's knowledge reach the 3D network?", ""]
    L.append(
        f"Generated by `{command}` ({mode} mode) on {result.get('date') or _utc_now()} UTC, "
        f"{platform.machine()}, {result['wall_seconds'] / 60:.1f} min wall{_machine(result)} (runs reused "
        f"from earlier invocations count nothing). Raw rows: `docs/transfer.json`; figure: "
        "`docs/images/transfer.png`."
    )
    L += ["", "## Setup", ""]
    L.append(
        f"- Pretraining data: {', '.join(f'`{p}`' for p in cfg['pretrain_data'])}: "
        f"{cfg['pretrain_fusions']['train']} single-frame fusions for pretraining; the last "
        f"{100 * cfg['heldout_fraction']:.0f}% of each sequence ({cfg['pretrain_fusions']['heldout']} fusions) "
        "held out for retrieval, never pretrained on."
    )
    for a, f in cfg.get("arm_fusions", {}).items():
        if f["frames_per_sample"] > 1:
            L.append(
                f"- `{a}` pretrains on its own fusions of {f['frames_per_sample']} neighbouring frames "
                f"({f['frame_stride']} frames apart): {f['train']} fusions, each entirely before the held-out tail "
                "(a fusion reaching into it is dropped); its retrieval uses the same single-frame held-out fusions."
            )
    L.append(
        f"- Arms ({', '.join(cfg['arms'])}): `configs/transfer/<arm>.yaml` over `configs/transfer/base.yaml` "
        f"(Res16UNet14S, EfficientNet-Lite0 teacher, 5 cm voxels, 120×160 images), {cfg['steps']} pretraining "
        f"steps each, seeds {cfg['seeds']}."
    )
    L.append(
        f"- Probe: train rooms {', '.join(Path(p).name for p in cfg['train_rooms'])}; test rooms "
        f"{', '.join(Path(p).name for p in cfg['test_rooms'])} (ScanNet-20). Frozen student output "
        "(64 channels) per point, standardized; multinomial logistic regression, full-batch L-BFGS "
        "(scipy L-BFGS-B) in float64 with L2 1e-4, to convergence (below)."
    )
    L.append(
        f"- Fine-tuning: `configs/finetune/transfer.yaml`, {cfg['finetune_steps']} steps, budgets "
        f"{cfg['finetune_budgets']} labeled points per training room, seeds {cfg['finetune_seeds']}; "
        "`ppkt` seed s starts from the `ppkt` pretraining run of seed s"
        + (f"; with `{' '.join(cfg['finetune_overrides'])}`." if cfg.get("finetune_overrides") else ".")
    )
    rows = cfg.get("probe_rows") or 0
    L.append(
        f"- Probe fit on {'all labeled voxels' if not rows else f'at most {rows} labeled voxels'} of each "
        "training room (the same voxels for every arm and seed), every labeled point of the test rooms scored."
    )
    L.append(
        "- Two mIoUs: a probe's is the mean of the test rooms' own mIoUs (each over the classes of that room); "
        "a fine-tuning run's comes from one confusion matrix pooled over both rooms' points (the fine-tuning "
        "job's evaluation), which also counts a class predicted in a room that lacks it. Compare "
        "within a table, not across tables."
    )
    L.append(
        "- Caveat: ICL-NUIM's and SUN3D's world frames are their first camera's (up ≈ −y) while the "
        "pretraining rotates about z (ScanNet's up); the quick mode pretrains on the ScanNet sequence only."
    )
    L.append(
        "- Reproducing: keep this report's JSON (`git show HEAD:docs/transfer.json > ref.json`), rerun the "
        "command above, then `python tools/transfer_compare.py ref.json docs/transfer.json`. Strictly, every "
        "quantity stated with an interval must have its new mean inside that interval. Every task is seeded "
        "and runs on one thread, so on the same kind of machine (the CPU and torch's kernel level in the "
        "first line) reruns have given every raw row again, bit for bit. A machine whose kernels round "
        "differently draws again from the same distribution, and such a draw misses about 9% of the "
        "quantities with 3 seeds, so the tool also gives each difference of the two runs with Welch's 95% "
        "interval."
    )
    L += reproductions.section(list(reruns))
    if cfg["quick"]:
        L.append(
            "- Quick mode: a few pretraining steps only. It shows the pipeline end to end and its noise "
            "level; it cannot show what full pretraining gives."
        )
    L += ["", "## Linear probe: mIoU (%) on the test rooms, mean [95% interval] over seeds", ""]
    L += ["| arm | mIoU | per seed |", "|---|---|---|"]
    for a, i in s["probe"].items():
        seeds = per_seed(result["probe"], "arm", arm=a)
        L.append(f"| {a} | {_pct(i)} | {', '.join(f'{100 * v:.1f}' for v in seeds.values())} |")
    L += ["", "Paired differences (mIoU points, same seed), 95% t-intervals:", ""]
    for k, d in s["diff"].items():
        L.append(f"- {k}: {d.describe()} — {_verdict(d, 'helps')}")
    conv = result["convergence"]
    if conv:
        L += [
            "",
            f"Probe convergence over all {len(conv)} fits: largest final gradient norm "
            f"{max(c['grad_norm'] for c in conv):.1e}, largest last loss change "
            f"{max(c['last_loss_change'] for c in conv):.1e}, iterations {min(c['iterations'] for c in conv)}–"
            f"{max(c['iterations'] for c in conv)}, all converged: {all(c['converged'] for c in conv)}.",
        ]
    if s.get("objectives"):
        L += objectives_table(s)
    L += ["", "## Held-out retrieval (voxel→pixel top-1, %), contiguous held-out frames", ""]
    L += ["| arm | top-1 | chance |", "|---|---|---|"]
    for a, (top1, chance) in s["retrieval"].items():
        L.append(f"| {a} | {_pct(top1, 2)} | {100 * chance.mean:.2f} |")
    for a in s["probe"]:
        if a not in s["retrieval"]:
            why = "not pretrained" if a == BASELINE else "no PPKT term, so no pixel head to retrieve"
            L.append(f"| {a} | n/a ({why}) | — |")
    if "retrieval_diff" in s:
        L.append(
            f"\nppkt − random_teacher top-1: {s['retrieval_diff'].describe(digits=2)} points — "
            f"{_verdict(s['retrieval_diff'], 'the ImageNet teacher retrieves better')}"
        )
    L += ["", "## Fine-tuning: scratch vs ppkt, mIoU (%) on the test rooms", ""]
    L += [
        "| labeled points / room | scratch | ppkt | ppkt − scratch | change between the last two evaluations |",
        "|---|---|---|---|---|",
    ]
    for b, f in s["finetune"].items():
        L.append(
            f"| {b} | {_pct(f['scratch'])} | {_pct(f['ppkt'])} | {f['gain'].describe()} | {f['last_change'].describe()} |"
        )
    if s["finetune"]:
        L.append(
            f"\nFlattened? A budget's curves count as flat when the change between their last two "
            f"test-room evaluations has a 95% interval inside ±{100 * FLAT:.0f} mIoU point:"
        )
        for b, f in s["finetune"].items():
            L.append(f"- {b} points: {flat_verdict(f['last_change'])}")
    L += ["", "## Targets of issue 11 (item 5)", "", *targets(s)]
    L += [
        "",
        "## Ablations",
        "",
    ]
    p, rt, d = (
        s["probe"].get("ppkt"),
        s["probe"].get("random_teacher"),
        s["diff"].get("ppkt - random_teacher"),
    )
    rd = s.get("retrieval_diff")
    rp, rr = (s["retrieval"].get(a, (None, None))[0] for a in ("ppkt", "random_teacher"))
    ret = f"{_pct(rp, 2)} / {_pct(rr, 2)} ({rd.describe(digits=2)})" if rd and rp and rr else "—"
    main = (
        f"| main run (above) | {cfg['steps']} | {_pct(p) if p else '—'} | {_pct(rt) if rt else '—'} | "
        f"{d.describe() if d else '—'} | — | {ret} | — |"
    )
    L += ablation.table(ablations, [main])
    L.append(
        "\nA change is kept when `ppkt` with it beats the reference `ppkt` (the main run, or the row of the "
        "same step budget without overrides) with a 95% interval above 0 (paired by seed); add a row with `python tools/transfer_bench.py --ablation NAME --set KEY=VALUE ...`. "
        'A reference "main run of DAY" is the main run of that day, not necessarily the one above: the '
        "main run has been remade (`git log docs/transfer.json`)."
    )
    L += ablation.finetune_table(ablations)
    return "\n".join(L) + "\n"


def objectives_table(s: dict[str, Any]) -> list[str]:
    """Each objective arm against ppkt (kept only when its paired interval is above 0) and against
    the random-teacher control, with its held-out retrieval."""
    L = ["", "## Objectives against ppkt (probe mIoU points, paired by seed, 95% t-intervals)", ""]
    L += [
        "| arm | probe mIoU | arm − ppkt | arm − random_teacher | held-out top-1 % | kept? |",
        "|---|---|---|---|---|---|",
    ]
    for a, d in s["objectives"].items():
        vs_p, vs_rt = d.get(f"minus_{PRODUCT}"), d.get("minus_random_teacher")
        ret = s["retrieval"].get(a)
        top1 = _pct(ret[0], 2) if ret else "n/a (no PPKT term)"
        if vs_p is None or vs_p.n < 2:
            kept = "not measured (no paired ppkt)"
        elif vs_p.low > 0:
            kept = "kept: beats ppkt"
        elif vs_p.high < 0:
            kept = "not kept: below ppkt"
        else:
            kept = "not kept: not shown to beat ppkt"
        L.append(
            f"| {a} | {_pct(s['probe'][a])} | {vs_p.describe() if vs_p else '—'} | "
            f"{vs_rt.describe() if vs_rt else '—'} | {top1} | {kept} |"
        )
    L.append("\nAn objective is kept over ppkt only when its paired difference has a 95% interval above 0.")
    return L


def write_json(result: dict[str, Any], s: dict[str, Any], path: Path, command: str) -> None:
    summary = {
        "probe": {a: i.to_json() for a, i in s["probe"].items()},
        "diff": {k: i.to_json() for k, i in s["diff"].items()},
        "objectives": {a: {k: i.to_json() for k, i in d.items()} for a, d in s.get("objectives", {}).items()},
        "finetune": {str(b): {k: i.to_json() for k, i in f.items()} for b, f in s["finetune"].items()},
        "retrieval": {
            a: {"top1": t.to_json(), "chance": c.to_json()} for a, (t, c) in s["retrieval"].items()
        },
    }
    atomic_write_json(
        path,
        {
            **{k: result[k] for k in ("probe", "finetune", "retrieval", "config")},
            "convergence": result["convergence"],
            "summary": summary,
            "command": command,
            "machine": result.get("machine"),
            "wall_seconds": result["wall_seconds"],
            "date": result.get("date"),
        },
    )


def plot(s: dict[str, Any], path: Path) -> None:
    """Bars with 95% intervals: probe mIoU per arm, retrieval top-1 per arm, fine-tuning per budget."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(14, 4))

    def bars(ax, labels, ivs, title, ylabel):
        means = [100 * i.mean for i in ivs]
        err = [
            [100 * (i.mean - i.low) if i.n > 1 else 0 for i in ivs],
            [100 * (i.high - i.mean) if i.n > 1 else 0 for i in ivs],
        ]
        ax.bar(range(len(labels)), means, yerr=err, capsize=4, color="tab:blue")
        ax.set_xticks(range(len(labels)), labels, rotation=30, ha="right")
        ax.set_title(title)
        ax.set_ylabel(ylabel)

    bars(axes[0], list(s["probe"]), list(s["probe"].values()), "linear probe, test rooms", "mIoU (%)")
    ret = s["retrieval"]
    bars(axes[1], list(ret), [t for t, _ in ret.values()], "held-out voxel→pixel top-1", "top-1 (%)")
    for k, (_, c) in enumerate(ret.values()):
        axes[1].plot([k - 0.4, k + 0.4], [100 * c.mean] * 2, "k--", lw=1)
    labels, ivs = [], []
    for b, f in s["finetune"].items():
        labels += [f"scratch {b}", f"ppkt {b}"]
        ivs += [f["scratch"], f["ppkt"]]
    bars(axes[2], labels, ivs, "fine-tuning, test rooms", "mIoU (%)")
    fig.suptitle("95% t-intervals over seeds (dashed: retrieval chance)")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.png")
    fig.savefig(tmp, dpi=110)
    plt.close(fig)
    tmp.replace(path)  # atomic: a reader never sees half a PNG


def _utc_now() -> str:
    return time.strftime("%Y-%m-%d %H:%M", time.gmtime())


def write_report(result: dict[str, Any], docs: Path, command: str) -> dict[str, Any]:
    """Write the three files under ``docs``; returns the summary. The run's date goes into the JSON,
    so that a later :func:`rerender` (after an ablation) still names when the main run was made."""
    result = {**result, "date": result.get("date") or _utc_now()}
    s = summarize(result)
    write_json(result, s, docs / "transfer.json", command)
    plot(s, docs / "images" / "transfer.png")
    _write_markdown(result, s, command, docs)
    return s


def rerender(docs: Path) -> None:
    """Rewrite docs/transfer.md from docs/transfer.json and the ablation rows (after an ablation)."""
    import json

    result = json.loads((docs / "transfer.json").read_text())
    s = summarize(result)
    _write_markdown(result, s, result["command"], docs)


def _write_markdown(result: dict[str, Any], s: dict[str, Any], command: str, docs: Path) -> None:
    """docs/transfer.md from the main run and what lies beside it in ``docs`` (ablations, reruns)."""
    atomic_write_text(
        docs / "transfer.md",
        markdown(result, s, command, ablation.load_rows(docs), reproductions.load_records(docs)),
    )
