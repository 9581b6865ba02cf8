"""The whole benchmark: prepare the data, pretrain the arms (or reuse their runs), probe, retrieve,
fine-tune, and return the rows the report is written from (:mod:`.report`).

Work per (arm, seed): one pretraining run (none for ``random``), frozen features of every room
extracted once, one probe fit on the training rooms, its mIoU on each test room, and (arms with a
PPKT term) retrieval on the held-out tail of the sequences. An arm with ``data.frames_per_sample``
F > 1 pretrains on its own F-frame fusions (:func:`.data.prepare_fusions`).

All of it is one list of tasks (:class:`_Plan`): an evaluation (:mod:`.evaluate`) waits for its
pretraining run, a ``ppkt`` fine-tuning for its seed's run, and with ``jobs`` > 1 they share the
worker processes (:mod:`.pool`), so no core idles while a last run trains. Every task is seeded by
its config, so the rows do not depend on ``jobs`` or on the order tasks finish in.
"""

from __future__ import annotations

import logging
import os
import resource
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch

from pixvox.bench.backproject import device_description
from pixvox.bench.transfer import arms as arms_mod
from pixvox.bench.transfer.data import check_disjoint, prepare_fusions, prepare_rooms, room_name
from pixvox.bench.transfer.evaluate import evaluate_arm
from pixvox.bench.transfer.finetune import finetune_config, finetune_run
from pixvox.bench.transfer.pool import run_side_by_side
from pixvox.config import PretrainConfig, to_dict
from pixvox.engine.threads import usable_cores

log = logging.getLogger("pixvox.transfer")
SHARED = "../shared/data"
PRODUCT = "ppkt"  #: the arm fine-tuning compares with scratch


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
    #: tasks side by side, runs and evaluations (:mod:`.pool`; 0 = the usable cores / train.cpu_threads)
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
    for r in train + test:  # a damaged room file fails here, before any run, not in a worker
        rooms.load_scene(r)
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
    pretrain_seeds = {a: list(opts.seeds) for a in arms}
    if PRODUCT in arms and opts.finetune_budgets:  # each fine-tuning seed starts from its own run
        pretrain_seeds[PRODUCT] = sorted(set(opts.seeds) | set(opts.finetune_seeds))

    def arm_cfg(name: str, seed: int) -> PretrainConfig:
        return arms_mod.arm_config(arms[name], seed, [f"data.root={splits[layouts[name]].train}", *overrides])

    # One list of tasks in priority order (pretraining, the product's first as fine-tuning waits
    # for it; then evaluations; then fine-tuning), each after the run it needs: a free process takes
    # the first ready one, so the probes and fine-tunings fill the cores while the last runs train.
    plan = _Plan()
    cfgs: dict[tuple[str, int], PretrainConfig] = {}
    run_dirs: dict[tuple[str, int], Path | None] = {}
    pretrained: dict[tuple[str, int], int] = {}
    for name in sorted(arms, key=lambda a: a != PRODUCT):
        for seed in pretrain_seeds[name]:
            cfgs[name, seed] = cfg = arm_cfg(name, seed)
            run_dirs[name, seed] = None
            if arms[name].options.pretrain:
                run_dirs[name, seed] = arms_mod.name_run(cfg, runs, name)
                pretrained[name, seed] = plan.add(
                    arms_mod.pretrain_run,
                    (cfg, runs, name, logs / f"{name}_s{seed}.log"),
                    lambda r, n=name, s=seed: (
                        f"{n} seed {s}: pretrained {r[1]['steps']} steps" + (" (reused)" if r[2] else "")
                    ),
                )
    evaluations = {
        (name, seed): plan.add(
            evaluate_arm,
            (
                name,
                seed,
                cfgs[name, seed],
                run_dirs[name, seed],
                rooms.root,
                train,
                test,
                opts.probe_rows,
                split.heldout,
            ),
            lambda r, n=name, s=seed: _evaluation_line(n, s, r),
            [pretrained[name, seed]] if (name, seed) in pretrained else [],
        )
        for name in arms
        for seed in opts.seeds
    }
    finetunes: dict[tuple[int, int, str], int] = {}
    if PRODUCT in arms and opts.finetune_budgets:
        recipe = Path(opts.finetune_recipe)
        for budget in opts.finetune_budgets:
            for seed in opts.finetune_seeds:
                for init in ("scratch", PRODUCT):
                    cfg = finetune_config(
                        recipe,
                        "scratch" if init == "scratch" else "pretrained",
                        budget,
                        seed,
                        opts.finetune_steps,
                        rooms.root,
                        train,
                        test,
                        run_dirs[PRODUCT, seed] if init == PRODUCT else None,
                        opts.curve_points,
                        opts.finetune_overrides,
                    )
                    finetunes[budget, seed, init] = plan.add(
                        finetune_run,
                        (cfg, runs / "finetune", logs / "finetune" / f"{init}_b{budget}_s{seed}.log"),
                        lambda r, i=init, b=budget, s=seed: (
                            f"fine-tune {i} {b} points seed {s}: "
                            f"mIoU {100 * r[0]['miou']:.1f}" + (" (reused)" if r[2] else "")
                        ),
                        [pretrained[PRODUCT, seed]] if init == PRODUCT else [],
                    )
    jobs = opts.jobs or max(1, usable_cores()[0] // max(1, base.train.cpu_threads))
    done = plan.run(t0, jobs, out / "transfer.log")

    result: dict[str, Any] = {"probe": [], "finetune": [], "retrieval": [], "convergence": [], "runs": []}
    for name in arms:  # the report's order: arm by arm, seed by seed
        for seed in pretrain_seeds[name]:
            if (name, seed) in pretrained:
                run_dir, _summary, reused = done[pretrained[name, seed]]
                result["runs"].append({"arm": name, "seed": seed, "run_dir": str(run_dir), "reused": reused})
            if seed in opts.seeds:
                ev = done[evaluations[name, seed]]
                result["probe"] += ev["probe"]
                result["convergence"].append({"arm": name, "seed": seed, **ev["convergence"]})
                if ev["retrieval"] is not None:
                    result["retrieval"].append({"arm": name, "seed": seed, **ev["retrieval"]})
    for (budget, seed, init), i in finetunes.items():
        summary, curve, _reused = done[i]
        result["finetune"].append(
            {"init": init, "budget": budget, "seed": seed, "miou": summary["miou"], "curve": curve}
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


class _Plan:
    """The benchmark's tasks: ``(fn, args)``, the line said when one finishes, the tasks it waits for."""

    def __init__(self) -> None:
        self.tasks: list[tuple[Callable[..., Any], tuple[Any, ...]]] = []
        self.lines: list[Callable[[Any], str]] = []
        self.after: list[list[int]] = []

    def add(
        self, fn: Callable[..., Any], args: tuple[Any, ...], line: Callable[[Any], str], after: list[int] = ()
    ) -> int:
        self.tasks.append((fn, args))
        self.lines.append(line)
        self.after.append(list(after))
        return len(self.tasks) - 1

    def run(self, t0: float, jobs: int, log_file: Path) -> list[Any]:
        """Every task's result, in order: ``jobs`` > 1 side by side (:mod:`.pool`), else one by one here
        (the list order runs every task after those it waits for). Finished runs are reused either way."""
        if jobs > 1 and len(self.tasks) > 1:
            _say(t0, f"{len(self.tasks)} tasks, {jobs} side by side (finished runs are reused)")
            return run_side_by_side(
                self.tasks, jobs, lambda i, r: _say(t0, self.lines[i](r)), log_file, self.after
            )
        results = []
        for (fn, args), line in zip(self.tasks, self.lines):
            results.append(fn(*args))
            _say(t0, line(results[-1]))
        return results


def _evaluation_line(arm: str, seed: int, ev: dict[str, Any]) -> str:
    probe = ", ".join(f"{r['test_room']} {100 * r['miou']:.1f}" for r in ev["probe"])
    line = f"{arm} seed {seed}: probe mIoU {probe} ({ev['convergence']['iterations']} L-BFGS iterations)"
    ret = ev["retrieval"]
    if ret is not None:
        line += f", held-out top-1 {100 * ret['top1']:.2f}% (chance {100 * ret['chance']:.2f}%)"
    return line


def frames_layout(cfg: PretrainConfig) -> tuple[int, int]:
    """(frames per fusion, stride between first frames) of an arm's pretraining data (default 1, F)."""
    f = cfg.data.frames_per_sample or 1
    return f, cfg.data.frame_stride or f


def cpu_seconds() -> float:
    """User + system CPU seconds of this process and its waited-for children (data workers)."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime
