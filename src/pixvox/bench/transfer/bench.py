"""The whole benchmark: prepare the data, pretrain the arms (or reuse their runs), probe, retrieve,
fine-tune, and return the rows the report is written from (:mod:`.report`).

Work per (arm, seed): one pretraining run (none for ``random``), frozen features of every room
extracted once, one probe fit on the training rooms, its mIoU on each test room, and (arms with a
PPKT term) retrieval on the held-out tail of the sequences. An arm with ``data.frames_per_sample``
F > 1 pretrains on its own F-frame fusions (:func:`.data.prepare_fusions`).
"""

from __future__ import annotations

import logging
import os
import resource
import time
import zlib
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from pixvox.bench.backproject import device_description
from pixvox.bench.transfer import arms as arms_mod
from pixvox.bench.transfer.data import check_disjoint, prepare_fusions, prepare_rooms, room_name
from pixvox.bench.transfer.features import RoomFeatures, build_arm_student, room_features
from pixvox.bench.transfer.finetune import finetune_config, finetune_run
from pixvox.bench.transfer.pool import run_side_by_side
from pixvox.bench.transfer.retrieval import has_retrieval, heldout_retrieval
from pixvox.config import PretrainConfig, to_dict
from pixvox.engine.threads import usable_cores
from pixvox.evaluation.metrics import SegmentationMetrics
from pixvox.evaluation.probe import class_counts, fit_linear_probe

log = logging.getLogger("pixvox.transfer")
SHARED = "../shared/data"
PRODUCT = "ppkt"  #: the arm fine-tuning compares with scratch
PROBE_ROWS_SEED = 0


@dataclass
class BenchOptions:
    """Every input of the benchmark; the defaults are issue 11's (``--quick``: :func:`quick`)."""

    pretrain_data: list[str] = field(
        default_factory=lambda: [
            f"{SHARED}/scannet_scene0378_00",
            f"{SHARED}/sun3d_fragments",
            f"{SHARED}/icl_livingroom1",
        ]
    )
    train_rooms: list[str] = field(
        default_factory=lambda: [
            f"{SHARED}/scannet_scene0000/scene0000_00",
            f"{SHARED}/scannet_pointcept/scene0011_00",
        ]
    )
    test_rooms: list[str] = field(
        default_factory=lambda: [
            f"{SHARED}/scannet_pointcept/scene0025_00",
            f"{SHARED}/scannet_pointcept/scene0046_02",
        ]
    )
    arms: list[str] = field(default_factory=list)  #: empty = the default arms of configs/transfer
    seeds: list[int] = field(default_factory=lambda: [0, 1, 2])
    steps: int = 300  #: pretraining steps of every arm (300: docs/transfer.md, ablations)
    finetune_budgets: list[int] = field(default_factory=lambda: [20, 50, 200])
    finetune_seeds: list[int] = field(default_factory=lambda: [0, 1, 2, 3, 4])
    finetune_steps: int = 100
    #: test-room evaluations per fine-tuning run (evenly spaced; the last two say if the curve flattened)
    curve_points: int = 4
    heldout_fraction: float = 0.2
    #: labeled voxels per training room the probe is fitted on (0 = all; 5 cm voxels hold ~1.5 points,
    #: so a room has ~50k): the fit costs time linear in them
    probe_rows: int = 20000
    out_dir: str = "outputs/transfer"
    arms_dir: str = str(arms_mod.ARMS_DIR)
    finetune_recipe: str = str(arms_mod.FINETUNE_RECIPE)
    #: ``key=value`` overrides of every arm's pretraining config (an ablation: compare its report
    #: with the plain run's; the runs are cached apart, their configs differ)
    overrides: list[str] = field(default_factory=list)
    #: ``key=value`` overrides of the fine-tuning recipe, for both inits (screening a recipe change)
    finetune_overrides: list[str] = field(default_factory=list)
    #: training runs side by side (:mod:`.pool`; 0 = the usable cores / each run's train.cpu_threads)
    jobs: int = 0
    quick: bool = False


def quick(opts: BenchOptions) -> BenchOptions:
    """The ``--quick`` mode: one sequence, a few steps, fine-tuning at 20 points only (minutes on 2
    cores; it shows the pipeline works, not what long pretraining gives)."""
    opts.pretrain_data = [f"{SHARED}/scannet_scene0378_00"]
    opts.steps, opts.seeds = 8, [0, 1, 2]
    opts.finetune_budgets, opts.finetune_seeds, opts.finetune_steps = [20], [0, 1, 2], 20
    opts.probe_rows, opts.curve_points = 4000, 2
    opts.quick = True
    return opts


def _say(t0: float, msg: str) -> None:
    print(f"[transfer {(time.perf_counter() - t0) / 60:5.1f} min] {msg}", flush=True)


def probe_rows(
    arm: str,
    seed: int,
    feats: dict[str, RoomFeatures],
    train: list[str],
    test: list[str],
    class_names: list[str],
    max_rows: int = 0,
) -> tuple[list[dict], dict]:
    """Fit the probe on ``train`` rooms (at most ``max_rows`` labeled voxels per room, 0 = all, drawn
    once per room), score every point of each ``test`` room; (rows, convergence)."""
    c = len(class_names)
    xs, cs = [], []
    for r in train:
        f = feats[r]
        counts = class_counts(f.labels, f.inverse, f.feats.shape[0], c)
        rows = np.flatnonzero(counts.sum(1) > 0)
        if max_rows and rows.size > max_rows:  # the same rows for every arm and seed (fixed by the room)
            rng = np.random.default_rng([PROBE_ROWS_SEED, zlib.crc32(r.encode())])
            rows = np.sort(rng.choice(rows, max_rows, replace=False))
        xs.append(f.feats[rows])
        cs.append(counts[rows])
    probe = fit_linear_probe(np.concatenate(xs), np.concatenate(cs))
    rows = []
    for r in test:
        f = feats[r]
        pred = probe.predict(f.feats)[f.inverse]
        m = SegmentationMetrics.from_predictions(pred, f.labels, class_names)
        rows.append({"arm": arm, "seed": seed, "test_room": r, "miou": m.miou, "oa": m.oa})
    return rows, probe.convergence


def run_bench(opts: BenchOptions) -> dict[str, Any]:
    """Run everything (reusing finished runs); returns the report's data (see :mod:`.report`)."""
    t0, cpu0, load0 = time.perf_counter(), cpu_seconds(), round(os.getloadavg()[0], 2)
    check_disjoint(opts.train_rooms, opts.test_rooms)  # before any compute
    out = Path(opts.out_dir)
    arms_dir = Path(opts.arms_dir)
    arm_list = opts.arms or arms_mod.default_arm_names(arms_dir)
    arms = {a: arms_mod.load_arm(a, arms_dir) for a in arm_list}
    rooms = prepare_rooms(opts.train_rooms, opts.test_rooms, out / "data" / "rooms")
    train = [room_name(p) for p in opts.train_rooms]
    test = [room_name(p) for p in opts.test_rooms]
    clouds = {r: rooms.load_scene(r) for r in train + test}
    base = arms_mod.arm_config(next(iter(arms.values())), 0, [])
    # the fusions an arm pretrains on: F frames per sample, `stride` frames apart (its own data.* keys)
    layouts = {a: frames_layout(arms_mod.arm_config(arm, 0, opts.overrides)) for a, arm in arms.items()}
    splits = {
        key: prepare_fusions(
            opts.pretrain_data,
            out / "data",
            voxel_size=base.data.voxel_size,
            image_size=tuple(base.data.image_size) if base.data.image_size else None,
            depth_max=base.data.depth_max,
            heldout_fraction=opts.heldout_fraction,
            frames_per_sample=key[0],
            frame_stride=key[1],
        )
        for key in sorted({(1, 1), *layouts.values()})
    }
    split = splits[(1, 1)]  # the single-frame split: its held-out tail serves every arm's retrieval
    for key, sp in splits.items():
        _say(
            t0,
            f"data, {key[0]} frame(s) per fusion (stride {key[1]}): {sp.num_train} pretraining fusions, "
            f"{sp.num_heldout} single-frame fusions held out; rooms {train} -> {test}",
        )
    overrides = [
        f"train.max_steps={opts.steps}",
        f"schedule.warmup_steps={min(20, opts.steps // 5)}",
        f"train.checkpoint_every={opts.steps}",
        *opts.overrides,
    ]
    result: dict[str, Any] = {"probe": [], "finetune": [], "retrieval": [], "convergence": [], "runs": []}
    runs, logs = out / "runs", out / "logs"
    ppkt_runs: dict[int, Path] = {}
    pretrain_seeds = {a: list(opts.seeds) for a in arms}
    if PRODUCT in arms and opts.finetune_budgets:  # each fine-tuning seed starts from its own run
        pretrain_seeds[PRODUCT] = sorted(set(opts.seeds) | set(opts.finetune_seeds))

    def arm_cfg(name: str, seed: int) -> PretrainConfig:
        return arms_mod.arm_config(arms[name], seed, [f"data.root={splits[layouts[name]].train}", *overrides])

    jobs = opts.jobs or max(1, usable_cores()[0] // max(1, base.train.cpu_threads))
    todo = [(n, s) for n, arm in arms.items() if arm.options.pretrain for s in pretrain_seeds[n]]
    _run_pending(
        t0,
        [(arms_mod.pretrain_run, (arm_cfg(n, s), runs, n, logs / f"{n}_s{s}.log")) for n, s in todo],
        [f"{n} seed {s}: pretrained" for n, s in todo],
        jobs,
        out,
    )
    for name, arm in arms.items():
        for seed in pretrain_seeds[name]:
            cfg = arm_cfg(name, seed)
            run_dir = None
            if arm.options.pretrain:
                run_dir, summary, reused = arms_mod.pretrain_run(
                    cfg, runs, name, logs / f"{name}_s{seed}.log"
                )
                result["runs"].append({"arm": name, "seed": seed, "run_dir": str(run_dir), "reused": reused})
                _say(
                    t0,
                    f"{name} seed {seed}: pretrained {summary['steps']} steps{' (reused)' if reused else ''}",
                )
                if name == PRODUCT:
                    ppkt_runs[seed] = run_dir
            if seed not in opts.seeds:
                continue
            student = build_arm_student(cfg, run_dir)
            feats = {r: room_features(student, clouds[r], cfg) for r in train + test}
            rows, conv = probe_rows(name, seed, feats, train, test, rooms.class_names, opts.probe_rows)
            result["probe"] += rows
            result["convergence"].append({"arm": name, "seed": seed, **conv})
            msg = ", ".join(f"{r['test_room']} {100 * r['miou']:.1f}" for r in rows)
            _say(t0, f"{name} seed {seed}: probe mIoU {msg} ({conv['iterations']} L-BFGS iterations)")
            if run_dir is not None and has_retrieval(cfg):
                ret = heldout_retrieval(cfg, run_dir, split.heldout)
                result["retrieval"].append({"arm": name, "seed": seed, **ret})
                _say(
                    t0,
                    f"{name} seed {seed}: held-out top-1 {100 * ret['top1']:.2f}% (chance {100 * ret['chance']:.2f}%)",
                )
    if PRODUCT in arms and opts.finetune_budgets:
        recipe = Path(opts.finetune_recipe)
        plan = [
            (budget, seed, init)
            for budget in opts.finetune_budgets
            for seed in opts.finetune_seeds
            for init in ("scratch", PRODUCT)
        ]
        ft_cfgs = [
            finetune_config(
                recipe,
                "scratch" if init == "scratch" else "pretrained",
                budget,
                seed,
                opts.finetune_steps,
                rooms.root,
                train,
                test,
                ppkt_runs.get(seed) if init == PRODUCT else None,
                opts.curve_points,
                opts.finetune_overrides,
            )
            for budget, seed, init in plan
        ]
        ft_logs = [logs / "finetune" / f"{init}_b{budget}_s{seed}.log" for budget, seed, init in plan]
        _run_pending(
            t0,
            [(finetune_run, (c, runs / "finetune", log)) for c, log in zip(ft_cfgs, ft_logs)],
            [f"fine-tune {init} {budget} points seed {seed}: done" for budget, seed, init in plan],
            jobs,
            out,
        )
        for (budget, seed, init), cfg, log in zip(plan, ft_cfgs, ft_logs):
            summary, curve, reused = finetune_run(cfg, runs / "finetune", log)
            result["finetune"].append(
                {
                    "init": init,
                    "budget": budget,
                    "seed": seed,
                    "miou": summary["miou"],
                    "curve": curve,
                }
            )
            _say(
                t0,
                f"fine-tune {init} {budget} points seed {seed}: mIoU {100 * summary['miou']:.1f}{' (reused)' if reused else ''}",
            )
    result["config"] = {
        **asdict(opts),
        "jobs": jobs,
        "arms": arm_list,
        "pretrain_fusions": {"train": split.num_train, "heldout": split.num_heldout},
        #: per arm: frames per fusion, stride, and the number of its pretraining fusions
        "arm_fusions": {
            a: {"frames_per_sample": k[0], "frame_stride": k[1], "train": splits[k].num_train}
            for a, k in layouts.items()
        },
        "arm_configs": {a: str(arm.file) for a, arm in arms.items()},
        "base": to_dict(base),
    }
    result["wall_seconds"] = round(time.perf_counter() - t0, 1)
    result["machine"] = {
        "cpu_seconds": round(cpu_seconds() - cpu0, 1),  # this process and its finished children
        "load_average": [load0, round(os.getloadavg()[0], 2)],  # 1-minute, at the start and the end
        "cores": os.cpu_count(),
        # two machines whose vector units differ round differently, so the same seeds' runs diverge
        # (tools/transfer_compare.py): say which machine made the numbers
        "cpu": device_description(torch.device("cpu")),
        "torch_cpu_capability": torch.backends.cpu.get_cpu_capability(),
    }
    return result


def _run_pending(t0: float, tasks: list, labels: list[str], jobs: int, out: Path) -> None:
    """With ``jobs`` > 1, run ``tasks`` (training runs cached by config) side by side first, so the
    sequential loop after it finds them finished; with 1 the loop runs them itself."""
    if jobs > 1 and len(tasks) > 1:
        _say(t0, f"{len(tasks)} runs, {jobs} side by side (finished ones are reused)")
        run_side_by_side(
            tasks, jobs, on_done=lambda i, _r: _say(t0, labels[i]), log_file=out / "transfer.log"
        )


def frames_layout(cfg: PretrainConfig) -> tuple[int, int]:
    """(frames per fusion, stride between first frames) of an arm's pretraining data (default 1, F)."""
    f = cfg.data.frames_per_sample or 1
    return f, cfg.data.frame_stride or f


def cpu_seconds() -> float:
    """User + system CPU seconds of this process and its waited-for children (data workers)."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime
