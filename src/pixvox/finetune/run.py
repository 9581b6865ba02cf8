"""The fine-tuning job: config → labeled scenes → network (scratch / pretrained / linear probe) → train
loop → evaluation on the original points → metrics JSON, confusion PNG, PLY predictions, summary.

Run through ``tools/finetune_seg.sh`` (torchrun) or ``python tools/finetune_seg.py``. Outputs under
``<experiment.output_root>/<experiment.name>/``: config.yaml, metrics.jsonl, curves.png, checkpoints/,
init.json (what was loaded), eval/metrics.json, eval/confusion.png, eval/predictions/*.ply,
summary.json.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from pixvox.comm import DistInfo, barrier, convert_to_distributed_batchnorm, init_distributed
from pixvox.config import FinetuneConfig, load_config, save_config, to_dict
from pixvox.datasets.segmentation import SegmentationDataset, class_weights, collate_segmentation
from pixvox.datasets.splits import resolve_split
from pixvox.engine import checkpoint as ckpt
from pixvox.engine.logger import MetricLogger, log, setup_console_logging
from pixvox.engine.optim import build_optimizer, build_scheduler
from pixvox.engine.sampler import ResumableBatchSampler
from pixvox.engine.trainer import Trainer
from pixvox.evaluation import metrics_table, plot_confusion, write_metrics_json
from pixvox.evaluation.export import legend
from pixvox.finetune.cli import parse_args
from pixvox.finetune.evaluate import evaluate
from pixvox.finetune.model import SegmentationNet, initialize
from pixvox.finetune.step import SegmentationStep
from pixvox.io.atomic import atomic_write_json
from pixvox.io.clouds import CloudIndex
from pixvox.prep.ensure import ensure_segmentation_data, open_segmentation_data
from pixvox.prep.scannet.benchmark import select_scenes


def build_model(net: SegmentationNet, cfg: FinetuneConfig, dist: DistInfo) -> torch.nn.Module:
    """The module that trains: ``net`` itself, or DDP-wrapped with synchronized BatchNorm."""
    if dist.world_size > 1 and cfg.train.sync_bn and not net.frozen_backbone:
        if dist.device.type == "cuda":
            from pixvox.models import convert_sync_batchnorm

            net.student = convert_sync_batchnorm(net.student)
        else:
            net.student = convert_to_distributed_batchnorm(net.student)
    net.to(dist.device)
    if dist.world_size == 1:
        return net
    return torch.nn.parallel.DistributedDataParallel(
        net, device_ids=[dist.device.index] if dist.device.type == "cuda" else None, broadcast_buffers=False
    )


def make_datasets(cfg: FinetuneConfig, index: CloudIndex) -> tuple[SegmentationDataset, SegmentationDataset]:
    d = cfg.data
    all_train = resolve_split(index, d.train, "data.train")
    train_names = select_scenes(all_train, d.subset.scene_fraction, d.subset.seed)
    val_names = resolve_split(index, d.val, "data.val")
    overlap = sorted(set(train_names) & set(val_names))
    if overlap:
        log.warning(
            "%d scenes are in both the training and the validation split (e.g. %s)", len(overlap), overlap[:3]
        )
    train_ds = SegmentationDataset(
        index, train_names, d, train=True, input_kind=cfg.student.input, repeat=d.train_repeat
    )
    val_ds = SegmentationDataset(index, val_names, d, train=False, input_kind=cfg.student.input)
    log.info(
        "train: %d of %d scenes%s | val: %d scenes | %d classes",
        len(train_names),
        len(all_train),
        f", {d.subset.points_per_scene} labeled points each" if d.subset.points_per_scene else "",
        len(val_names),
        index.num_classes,
    )
    return train_ds, val_ds


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Run one fine-tuning job; returns its summary (also written to summary.json)."""
    args = parse_args(argv)
    cfg = load_config(FinetuneConfig, args.config, args.overrides)
    dist = init_distributed(cfg.train.device)
    setup_console_logging(dist.is_main)
    threads = torch.get_num_threads()
    if cfg.train.cpu_threads and dist.device.type == "cpu":
        torch.set_num_threads(cfg.train.cpu_threads)
    try:
        return run(cfg, args.resume, dist)
    finally:
        torch.set_num_threads(threads)  # in-process callers (tests, tools/compare_init.py) keep theirs


def run(cfg: FinetuneConfig, resume_spec: str, dist: DistInfo) -> dict[str, Any]:
    run_dir = Path(cfg.experiment.output_root) / cfg.experiment.name
    if dist.is_main:
        save_config(cfg, run_dir / "config.yaml")
        log.info(
            "run dir %s | %d process(es) on %s (%s) | init %s",
            run_dir,
            dist.world_size,
            dist.device,
            dist.backend or "single",
            cfg.init.mode,
        )
    if dist.world_size == 1:
        ensure_segmentation_data(cfg)
    index = open_segmentation_data(cfg)
    train_ds, val_ds = make_datasets(cfg, index)
    weights = None
    if cfg.loss.class_weights != "none":
        weights = class_weights(train_ds.label_counts(), cfg.loss.class_weights)
        log.info("class weights %s", [round(float(w), 3) for w in weights])

    torch.manual_seed(cfg.experiment.seed)  # same initial weights (and head) on every rank
    net = SegmentationNet(cfg.student, index.num_classes)
    report, init_path = initialize(net, cfg)
    init_info = {
        "mode": cfg.init.mode,
        "checkpoint": str(init_path) if init_path else None,
        "loaded": len(report.loaded) if report else 0,
        "new_head": report.expected_missing if report else [],
        "unexpected": report.unexpected if report else [],
        "trainable_parameters": sum(p.numel() for p in net.parameters() if p.requires_grad),
    }
    if dist.is_main:
        atomic_write_json(run_dir / "init.json", init_info)
    model = build_model(net, cfg, dist)
    optimizer = build_optimizer(net.parameters(), cfg.optim)
    scheduler = build_scheduler(optimizer, cfg.schedule, cfg.train.max_steps)
    scaler = torch.amp.GradScaler("cuda") if cfg.train.amp == "fp16" and dist.device.type == "cuda" else None

    start_step = 0
    resume = None if resume_spec in ("none", "") else resume_spec
    path = ckpt.resolve_resume(resume, run_dir / "checkpoints")
    if path is not None:
        state = ckpt.load_checkpoint(path, map_location=dist.device)
        net.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        if scaler is not None and "scaler" in state:
            scaler.load_state_dict(state["scaler"])
        ckpt.set_rng_state(state["rng"])
        start_step = int(state["step"])
        log.info("resumed from %s at step %d", path, start_step)

    # train.batch_size is the global batch, split across processes (as in pretraining).
    sampler = ResumableBatchSampler(
        len(train_ds),
        cfg.train.batch_size,
        dist.rank,
        dist.world_size,
        cfg.experiment.seed,
        start_step=start_step,
        max_steps=cfg.train.max_steps,
    )
    loader = torch.utils.data.DataLoader(
        train_ds,
        batch_sampler=sampler,
        collate_fn=collate_segmentation,
        num_workers=cfg.train.num_workers,
        pin_memory=dist.device.type == "cuda",
        persistent_workers=False,
        prefetch_factor=4 if cfg.train.num_workers else None,
    )
    step_fn = SegmentationStep(model, dist.device, weights, cfg.loss.label_smoothing)

    def periodic_eval(step: int) -> dict[str, float]:
        if step >= cfg.train.max_steps:
            return {}  # the final evaluation below (with exports) covers the last step
        m, loss = evaluate(net, val_ds, dist.device)
        return {"eval_miou": m.miou, "eval_macc": m.macc, "eval_acc": m.oa, "eval_loss": loss}

    logger = MetricLogger(
        run_dir,
        cfg.train.max_steps,
        start_step,
        enabled=dist.is_main,
        progress_bar=cfg.logging.progress_bar,
        wandb_mode=cfg.logging.wandb,
        wandb_project=cfg.logging.wandb_project,
        run_name=cfg.experiment.name,
        config=to_dict(cfg),
    )
    trainer = Trainer(
        model=model,
        step_fn=step_fn,
        optimizer=optimizer,
        scheduler=scheduler,
        loader=loader,
        cfg=cfg.train,
        run_dir=run_dir,
        dist=dist,
        logger=logger,
        config_dict=to_dict(cfg),
        start_step=start_step,
        scaler=scaler,
        state_dict_fn=net.state_dict,
        extra_checkpoint=lambda: {
            "student": net.student_state(),
            "student_name": cfg.student.name,
            "class_names": index.class_names,
        },
        eval_fn=periodic_eval if cfg.eval.every else None,
        eval_every=cfg.eval.every,
    )
    t0 = time.perf_counter()
    state = trainer.run(grad_clip=cfg.optim.grad_clip) if start_step < cfg.train.max_steps else trainer.state
    train_seconds = time.perf_counter() - t0

    eval_dir = run_dir / "eval"
    t1 = time.perf_counter()
    metrics, eval_loss = evaluate(net, val_ds, dist.device, eval_dir / "predictions", cfg.eval.export_ply)
    eval_seconds = time.perf_counter() - t1
    if dist.is_main and not state.stopped_early:
        logger.log(
            state.step,
            {
                "eval_miou": metrics.miou,
                "eval_macc": metrics.macc,
                "eval_acc": metrics.oa,
                "eval_loss": eval_loss,
            },
        )
    curves = logger.close()
    barrier()
    summary = {
        "run_dir": str(run_dir),
        "init": cfg.init.mode,
        "checkpoint": init_info["checkpoint"],
        "steps": state.step,
        "stopped_early": state.stopped_early,
        "train_seconds": round(train_seconds, 1),
        "eval_seconds": round(eval_seconds, 1),
        "train_scenes": len(train_ds.scenes),
        "val_scenes": len(val_ds.scenes),
        "points_per_scene": cfg.data.subset.points_per_scene,
        "scene_fraction": cfg.data.subset.scene_fraction,
        "seed": cfg.experiment.seed,
        "miou": metrics.miou,
        "macc": metrics.macc,
        "oa": metrics.oa,
        "eval_loss": eval_loss,
        "curves": str(curves) if curves else None,
    }
    if dist.is_main:
        write_metrics_json(
            eval_dir / "metrics.json",
            metrics,
            init=cfg.init.mode,
            step=state.step,
            checkpoint=init_info["checkpoint"],
            val_scenes=val_ds.scenes,
        )
        if cfg.eval.export_ply:
            atomic_write_json(eval_dir / "predictions" / "legend.json", legend(index.class_names))
        if cfg.eval.confusion_png:
            title = f"{cfg.experiment.name} ({cfg.init.mode})"
            plot_confusion(metrics, eval_dir / "confusion.png", title=title)
        atomic_write_json(
            run_dir / "summary.json",
            {k: (None if isinstance(v, float) and v != v else v) for k, v in summary.items()},
        )
        print(
            metrics_table(
                metrics,
                f"{cfg.experiment.name}: {cfg.init.mode}, step {state.step}, "
                f"{len(val_ds.scenes)} validation scene(s)",
            )
        )
        print(
            f"pixvox finetune {'STOPPED' if state.stopped_early else 'done'}: {state.step} steps in "
            f"{train_seconds:.0f} s | mIoU {100 * metrics.miou:.1f} | mAcc {100 * metrics.macc:.1f} | "
            f"OA {100 * metrics.oa:.1f} | {eval_dir / 'metrics.json'}"
        )
        print(json.dumps({k: v for k, v in summary.items() if k not in ("curves",)}, allow_nan=True))
    return summary


if __name__ == "__main__":
    main()
