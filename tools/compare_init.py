#!/usr/bin/env python
"""Does pretraining help? Fine-tune from scratch, from a pretraining checkpoint and as a linear probe
at several label budgets and seeds on real data, and report mIoU (mean ± std over seeds).

Default setting (the real data this project has): pretrain on ICL-NUIM living room 1
(``bash tools/pretrain.sh configs/pretrain/icl_livingroom.yaml`` → outputs/icl_livingroom), fine-tune on
ScanNet scene0000_00 with 20, 50 and 200 labeled points (configs/finetune/scannet_scene0000.yaml),
evaluate on scene0000_01, seeds 0, 1, 2: 27 short CPU runs. A seed fixes the network initialization,
the augmentations and which points are labeled, so the three initializations of one seed train on the
same labels.

Writes ``docs/results.json`` (a list of rows: init, budget, seed, miou, macc, oa, steps, seconds,
command) and ``docs/results.md`` (tables, setup, timing), both atomically. Finished runs are reused
when their saved config equals the one asked for (``--no-reuse`` reruns them).

    python tools/compare_init.py                       # the default comparison
    python tools/compare_init.py --budgets 20 --seeds 0 --steps 30 --out-md /tmp/r.md --out-json /tmp/r.json
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import shlex
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
# One compute thread for the whole process, set before torch starts its OpenMP pool: on a shared
# 2-core machine a second spinning thread makes MinkowskiEngine's CPU kernels many times slower.
os.environ.setdefault("OMP_NUM_THREADS", "1")

INITS = ("scratch", "pretrained", "linear_probe")

#: What this comparison changes relative to configs/finetune/scannet_scene0000.yaml, and why.
#: ICL-NUIM's world frame is its first camera's (up = -y) and the pretraining rotates about y; ScanNet is
#: z-up. Sparse convolutions are not rotation invariant, so the fine-tuning clouds are turned to -y up.
ALIGN_TO_ICL = ["data.world_rotation=[[1,0,0],[0,0,-1],[0,1,0]]", "data.augment_3d.up_axis=y"]
#: A linear layer on frozen features takes a larger step size than the whole network.
PROBE_OVERRIDES = ["optim.lr=0.01", "optim.weight_decay=0.0"]


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--config", default="configs/finetune/scannet_scene0000.yaml")
    p.add_argument(
        "--pretrain",
        default="outputs/icl_livingroom",
        help="pretraining run folder or checkpoint (default outputs/icl_livingroom)",
    )
    p.add_argument("--budgets", type=int, nargs="+", default=[20, 50, 200], help="labeled points per scene")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--inits", nargs="+", default=list(INITS), choices=INITS)
    p.add_argument(
        "--steps", type=int, default=None, help="train.max_steps of every run (default: the config's)"
    )
    p.add_argument("--no-align", action="store_true", help="keep ScanNet's z-up frame (see ALIGN_TO_ICL)")
    p.add_argument("--output-root", default="outputs/compare_init")
    p.add_argument("--out-md", default="docs/results.md")
    p.add_argument("--out-json", default="docs/results.json")
    p.add_argument("--no-reuse", action="store_true", help="rerun runs that already finished")
    p.add_argument("overrides", nargs="*", help="extra config overrides for every run (key=value)")
    return p.parse_args(argv)


def run_overrides(
    a: argparse.Namespace, init: str, budget: int, seed: int, checkpoint: str | None
) -> list[str]:
    o = [
        f"experiment.name={init}_b{budget}_s{seed}",
        f"experiment.output_root={a.output_root}",
        f"experiment.seed={seed}",
        f"data.subset.points_per_scene={budget}",
        f"data.subset.seed={seed}",
        f"init.mode={init}",
        "eval.export_ply=0",
        "eval.confusion_png=false",
        "logging.wandb=disabled",
        "logging.progress_bar=false",
    ]
    if init != "scratch":
        o.append(f"init.checkpoint={checkpoint}")
    if not a.no_align:
        o += ALIGN_TO_ICL
    if init == "linear_probe":
        o += PROBE_OVERRIDES
    if a.steps is not None:
        o.append(f"train.max_steps={a.steps}")
    return o + list(a.overrides)


def finished_summary(run_dir: Path, cfg_dict: dict) -> dict | None:
    """The run's summary when it finished with exactly this config, else None."""
    import json

    import yaml

    summary, saved = run_dir / "summary.json", run_dir / "config.yaml"
    if not (summary.is_file() and saved.is_file()):
        return None
    if yaml.safe_load(saved.read_text()) != cfg_dict:
        return None
    s = json.loads(summary.read_text())
    return s if not s.get("stopped_early") and s.get("miou") is not None else None


def majority_baseline(config: str, overrides: list[str], seed: int, budget: int) -> float:
    """mIoU on the validation scenes of predicting the most frequent labeled training class everywhere."""
    import numpy as np

    from pixvox.config import FinetuneConfig, load_config
    from pixvox.evaluation import constant_prediction_metrics
    from pixvox.finetune.run import make_datasets
    from pixvox.prep.ensure import ensure_segmentation_data, open_segmentation_data

    cfg = load_config(FinetuneConfig, config, overrides)
    ensure_segmentation_data(cfg)
    train, val = make_datasets(cfg, open_segmentation_data(cfg))
    majority = int(train.label_counts().argmax())
    gt = np.zeros(val.num_classes, np.int64)
    for name in val.scenes:
        lab = val.load_labels(name)
        gt += np.bincount(lab[lab >= 0], minlength=val.num_classes)
    return constant_prediction_metrics(gt, majority, val.class_names).miou


def mean_std(xs: list[float]) -> tuple[float, float]:
    return statistics.fmean(xs), (statistics.stdev(xs) if len(xs) > 1 else 0.0)


def write_reports(a, rows, baselines, pretrain_info, wall, command, reused: int) -> None:
    import platform

    from pixvox.io.atomic import atomic_write_json, atomic_write_text

    atomic_write_json(REPO / a.out_json if not Path(a.out_json).is_absolute() else a.out_json, rows)
    budgets = sorted({r["budget"] for r in rows})
    inits = [i for i in INITS if any(r["init"] == i for r in rows)]
    seeds = sorted({r["seed"] for r in rows})
    L = ["# Does pretraining help? Scratch vs pretrained vs linear probe on real data", ""]
    again = f", {reused} of them reused from an earlier invocation" if reused else ""
    L.append(
        f"Generated by `{command}` on {time.strftime('%Y-%m-%d %H:%M')} "
        f"({platform.processor() or platform.machine()}, {os.cpu_count()} CPU cores, "
        f"{wall / 60:.1f} min for {len(rows)} runs{again}; their training loops took "
        f"{sum(r['seconds'] for r in rows) / 60:.1f} min in all). Raw rows: `{a.out_json}`."
    )
    L += [
        "",
        "What these numbers mean, their caveats and what was changed to get them: "
        '[finetune.md, "Does pretraining help?"](finetune.md#does-pretraining-help).',
        "",
        "These runs train and test on two scans of the same room and have no random-teacher control; "
        "whether the 2D teacher's knowledge helps is measured on rooms never trained on, with controls, "
        "by `python tools/transfer_bench.py`: [transfer.md](transfer.md). A gain is called help only "
        "where its 95% interval excludes 0.",
    ]
    L += ["", "## Setup", ""]
    L.append(
        f"- Pretraining: `{pretrain_info['checkpoint']}` (step {pretrain_info['step']}, student "
        f"{pretrain_info['student']}, {pretrain_info['data']})."
    )
    L.append(
        f"- Fine-tuning: `{a.config}` — train on ScanNet scene0000_00 with N labeled points (the rest "
        "ignored in the loss), evaluate every labeled point of scene0000_01 (another scan of the same "
        f"room), ScanNet-20 classes; {rows[0]['steps']} steps per run."
    )
    if not a.no_align:
        L.append(
            f"- Frame alignment for every run: `{' '.join(ALIGN_TO_ICL)}` (ScanNet z-up turned to the "
            "ICL pretraining frame's -y-up, augmentation about y)."
        )
    L.append(
        f"- Linear probe: frozen backbone and BatchNorm statistics, new 1x1x1 head; "
        f"`{' '.join(PROBE_OVERRIDES)}`."
    )
    L.append(
        "- A seed fixes the head/network initialization, the augmentation stream and which points are "
        "labeled; all initializations of one seed see the same labels."
    )
    L += ["", "## mIoU (%) on scene0000_01, mean ± std over seeds " + ", ".join(map(str, seeds)), ""]
    L.append("| labeled points / scene | " + " | ".join(inits) + " | majority class |")
    L.append("|---" * (len(inits) + 2) + "|")
    for b in budgets:
        cells = []
        for i in inits:
            xs = [100 * r["miou"] for r in rows if r["init"] == i and r["budget"] == b]
            m, s = mean_std(xs)
            cells.append(f"{m:.1f} ± {s:.1f}")
        base = statistics.fmean(baselines[b]) * 100
        L.append(f"| {b} | " + " | ".join(cells) + f" | {base:.1f} |")
    L += ["", "Overall accuracy (%), mean ± std:", ""]
    L.append("| labeled points / scene | " + " | ".join(inits) + " |")
    L.append("|---" * (len(inits) + 1) + "|")
    for b in budgets:
        cells = []
        for i in inits:
            m, s = mean_std([100 * r["oa"] for r in rows if r["init"] == i and r["budget"] == b])
            cells.append(f"{m:.1f} ± {s:.1f}")
        L.append(f"| {b} | " + " | ".join(cells) + " |")
    if "scratch" in inits and "pretrained" in inits:
        L += ["", "Pretrained minus scratch, mIoU points (paired by seed):", ""]
        for b in budgets:
            d = []
            for s in seeds:
                p = [r["miou"] for r in rows if (r["init"], r["budget"], r["seed"]) == ("pretrained", b, s)]
                q = [r["miou"] for r in rows if (r["init"], r["budget"], r["seed"]) == ("scratch", b, s)]
                if p and q:
                    d.append(100 * (p[0] - q[0]))
            m, sd = mean_std(d)
            L.append(f"- {b} points: {m:+.1f} ± {sd:.1f} (per seed: {', '.join(f'{x:+.1f}' for x in d)})")
    L += [
        "",
        "## Every run",
        "",
        "| init | budget | seed | mIoU | mAcc | OA | train s |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        L.append(
            f"| {r['init']} | {r['budget']} | {r['seed']} | {100 * r['miou']:.1f} | "
            f"{100 * r['macc']:.1f} | {100 * r['oa']:.1f} | {r['seconds']:.0f} |"
        )
    L += [
        "",
        "Each row's command is in the JSON (`command`); for example:",
        "",
        "```",
        rows[0]["command"],
        "```",
        "",
    ]
    out = Path(a.out_md)
    atomic_write_text(out if out.is_absolute() else REPO / out, "\n".join(L))


def main(argv=None) -> int:
    a = parse_args(argv)
    os.chdir(REPO)
    from pixvox.config import FinetuneConfig, load_config, to_dict
    from pixvox.engine.checkpoint import load_checkpoint
    from pixvox.finetune.model import resolve_pretrain_checkpoint
    from pixvox.finetune.run import main as finetune

    # Runs log to <output-root>/<run>.log; the console keeps one line per run.
    Path(a.output_root).mkdir(parents=True, exist_ok=True)
    logging.basicConfig(
        level=logging.INFO,
        filename=Path(a.output_root) / "compare_init.log",
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    checkpoint = None
    pretrain_info = {"checkpoint": None, "step": None, "student": None, "data": None}
    if any(i != "scratch" for i in a.inits):
        try:
            checkpoint = str(resolve_pretrain_checkpoint(a.pretrain))
        except FileNotFoundError:
            print(
                f"No pretraining checkpoint at {a.pretrain}. Make it first (about 10 minutes on CPU):\n"
                "  bash tools/pretrain.sh configs/pretrain/icl_livingroom.yaml\n"
                "(or pass --pretrain PATH, or --inits scratch)",
                file=sys.stderr,
            )
            return 2
        state = load_checkpoint(checkpoint)
        pcfg = state.get("config", {})
        d = pcfg.get("data", {})
        pretrain_info = {
            "checkpoint": checkpoint,
            "step": state.get("step"),
            "student": state.get("student_name"),
            "data": f"{d.get('root')} at {d.get('voxel_size')} m voxels",
        }
    command = " ".join(["python tools/compare_init.py", *(shlex.quote(x) for x in (argv or sys.argv[1:]))])
    rows, baselines, reused_runs = [], {}, 0
    t0 = time.perf_counter()
    total = len(a.budgets) * len(a.seeds) * len(a.inits)
    k = 0
    for budget in a.budgets:
        for seed in a.seeds:
            base_ov = run_overrides(a, "scratch", budget, seed, None)
            baselines.setdefault(budget, []).append(majority_baseline(a.config, base_ov, seed, budget))
            for init in a.inits:
                k += 1
                ov = run_overrides(a, init, budget, seed, checkpoint)
                cfg = load_config(FinetuneConfig, a.config, ov)
                run_dir = Path(cfg.experiment.output_root) / cfg.experiment.name
                args = [a.config, *ov, "--resume", "none"]
                cmd = "python tools/finetune_seg.py " + " ".join(shlex.quote(x) for x in args)
                summary = None if a.no_reuse else finished_summary(run_dir, to_dict(cfg))
                if summary is None:
                    log_path = Path(a.output_root) / f"{cfg.experiment.name}.log"
                    with open(log_path, "w") as out, contextlib.redirect_stdout(out):
                        summary = finetune(args)
                    if summary["stopped_early"]:  # the run caught SIGINT/SIGTERM: stop the comparison too
                        print(
                            f"[compare_init] interrupted during {run_dir}; rerun to continue "
                            "(finished runs are reused)",
                            file=sys.stderr,
                        )
                        return 130
                    reused = ""
                else:
                    reused = " (reused)"
                    reused_runs += 1
                rows.append(
                    {
                        "init": init,
                        "budget": budget,
                        "seed": seed,
                        "miou": summary["miou"],
                        "macc": summary["macc"],
                        "oa": summary["oa"],
                        "steps": summary["steps"],
                        "seconds": summary["train_seconds"],
                        "command": cmd,
                    }
                )
                print(
                    f"[compare_init] {k}/{total} {init:>12} budget {budget:>3} seed {seed}: "
                    f"mIoU {100 * summary['miou']:.1f}{reused} | {(time.perf_counter() - t0) / 60:.1f} min",
                    flush=True,
                )
    wall = time.perf_counter() - t0
    write_reports(a, rows, baselines, pretrain_info, wall, command, reused_runs)
    print(Path(a.out_md).read_text() if Path(a.out_md).is_absolute() else (REPO / a.out_md).read_text())
    return 0


if __name__ == "__main__":
    sys.exit(main())
