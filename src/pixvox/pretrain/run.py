"""The pretraining job: config → data → networks → train loop → checkpoints and a summary.

Run through ``tools/pretrain.sh`` (torchrun) or ``python tools/pretrain.py``.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Sequence
from pathlib import Path

import torch

from pixvox.comm import DistInfo, barrier, convert_to_distributed_batchnorm, init_distributed
from pixvox.config import PretrainConfig, load_config, save_config, to_dict
from pixvox.datasets.fusion import FusionPretrainDataset, collate_pretrain, holdout_split
from pixvox.engine import checkpoint as ckpt
from pixvox.engine.job_args import parse_job_args
from pixvox.engine.logger import MetricLogger, log, setup_console_logging
from pixvox.engine.optim import build_optimizer, build_scheduler
from pixvox.engine.sampler import ResumableBatchSampler, sample_seed
from pixvox.engine.trainer import Trainer
from pixvox.io.atomic import atomic_write_json
from pixvox.pretrain.model import PretrainNet, uses_pointcontrast
from pixvox.pretrain.step import PretrainStep

EVAL_EPOCH = 2**31 - 1  # seed stream of the held-out evaluation, apart from every training epoch
DEFAULT_CONFIG = "configs/pretrain/quickstart.yaml"


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    return parse_job_args("pixvox pretraining (PPKT / PointContrast)", DEFAULT_CONFIG, argv)


def build_model(cfg: PretrainConfig, dist: DistInfo) -> tuple[PretrainNet, torch.nn.Module]:
    """The network and the module that trains (DDP-wrapped with synchronized BN across processes)."""
    torch.manual_seed(cfg.experiment.seed)  # same initial weights on every rank
    net = PretrainNet(cfg)
    if dist.world_size > 1 and cfg.train.sync_bn:
        if dist.device.type == "cuda":
            from pixvox.models import convert_sync_batchnorm

            net = convert_sync_batchnorm(net)
        else:
            net = convert_to_distributed_batchnorm(net)
    net = net.to(dist.device)
    if dist.world_size == 1:
        return net, net
    ddp = torch.nn.parallel.DistributedDataParallel(
        net, device_ids=[dist.device.index] if dist.device.type == "cuda" else None, broadcast_buffers=False
    )
    return net, ddp


def make_eval_fn(cfg: PretrainConfig, step_fn: PretrainStep, dataset: FusionPretrainDataset | None):
    """Held-out voxel→pixel retrieval: fixed samples, no augmentation, fixed pair seeds."""
    if dataset is None or len(dataset) == 0:
        return None
    n = min(len(dataset), cfg.train.batch_size)
    batch = collate_pretrain(
        [dataset[(i, sample_seed(cfg.experiment.seed, EVAL_EPOCH, i))] for i in range(n)]
    )

    def evaluate(step: int) -> dict[str, float]:
        _, m, _ = step_fn.losses(batch, gather=False)
        return {"eval_loss": m["loss"], "eval_acc": m["acc"], "eval_chance": m["chance"]}

    return evaluate


def main(argv: Sequence[str] | None = None) -> dict:
    args = parse_args(argv)
    cfg = load_config(PretrainConfig, args.config, args.overrides)
    dist = init_distributed(cfg.train.device)
    setup_console_logging(dist.is_main)
    run_dir = Path(cfg.experiment.output_root) / cfg.experiment.name
    if dist.is_main:
        save_config(cfg, run_dir / "config.yaml")
        log.info(
            "run dir %s | %d process(es) on %s (%s)",
            run_dir,
            dist.world_size,
            dist.device,
            dist.backend or "single",
        )

    root = Path(cfg.data.root)
    if not (root / "index.json").is_file():
        raise FileNotFoundError(
            f"{root / 'index.json'} not found: prepare fusions with python -m pixvox.prep fusions, or run "
            "tools/pretrain.sh, which prepares data.sequence or the synthetic default dataset "
            "(data.synthetic.enabled=true) first"
        )
    probe = FusionPretrainDataset(root, cfg.data, augment=False)
    train_idx, held_idx = holdout_split(len(probe.index), cfg.data.holdout_every)
    two_views = uses_pointcontrast(cfg)
    train_ds = FusionPretrainDataset(
        root, cfg.data, train_idx, augment=True, two_views=two_views, input_kind=cfg.student.input
    )
    held_ds = (
        FusionPretrainDataset(
            root, cfg.data, held_idx, augment=False, two_views=two_views, input_kind=cfg.student.input
        )
        if held_idx
        else None
    )

    net, model = build_model(cfg, dist)
    optimizer = build_optimizer(model.parameters(), cfg.optim)
    scheduler = build_scheduler(optimizer, cfg.schedule, cfg.train.max_steps)
    scaler = torch.amp.GradScaler("cuda") if cfg.train.amp == "fp16" and dist.device.type == "cuda" else None

    start_step = 0
    resume = None if args.resume in ("none", "") else args.resume
    path = ckpt.resolve_resume(resume, run_dir / "checkpoints")
    if path is not None:
        state = ckpt.load_checkpoint(path, map_location=dist.device)
        missing, unexpected = net.load_state_dict(state["model"], strict=False)
        unexpected = [k for k in unexpected]
        missing = [k for k in missing if k in net.checkpoint_state()]
        if missing or unexpected:
            raise RuntimeError(
                f"{path}: does not fit this model (missing {missing[:5]}, unexpected {unexpected[:5]})"
            )
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        if scaler is not None and "scaler" in state:
            scaler.load_state_dict(state["scaler"])
        ckpt.set_rng_state(state["rng"])
        start_step = int(state["step"])
        log.info("resumed from %s at step %d", path, start_step)
    if start_step >= cfg.train.max_steps:
        log.info("nothing to do: the run already reached train.max_steps=%d", cfg.train.max_steps)

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
        collate_fn=collate_pretrain,
        num_workers=cfg.train.num_workers,
        pin_memory=dist.device.type == "cuda",
        persistent_workers=False,
        prefetch_factor=4 if cfg.train.num_workers else None,
    )
    step_fn = PretrainStep(model, cfg, dist.device)
    eval_step = PretrainStep(net, cfg, dist.device)
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
        state_dict_fn=net.checkpoint_state,
        extra_checkpoint=lambda: {"student": net.student_state(), "student_name": cfg.student.name},
        eval_fn=make_eval_fn(cfg, eval_step, held_ds),
        eval_every=cfg.train.checkpoint_every,
    )
    t0 = time.perf_counter()
    state = trainer.run(grad_clip=cfg.optim.grad_clip) if start_step < cfg.train.max_steps else trainer.state
    curves = logger.close()
    barrier()
    m = state.last_metrics
    summary = {
        "run_dir": str(run_dir),
        "steps": state.step,
        "stopped_early": state.stopped_early,
        "seconds": round(time.perf_counter() - t0, 1),
        "checkpoint": str(ckpt.latest_checkpoint(run_dir / "checkpoints")),
        "curves": str(curves) if curves else None,
        **{k: m[k] for k in ("loss", "acc", "chance", "eval_loss", "eval_acc", "eval_chance") if k in m},
    }
    if dist.is_main:
        atomic_write_json(run_dir / "summary.json", summary)
        acc = summary.get("eval_acc", summary.get("acc"))
        chance = summary.get("eval_chance", summary.get("chance"))
        which = "held-out" if "eval_acc" in summary else "train"
        ratio = f" ({acc / chance:.0f}x chance)" if acc is not None and chance else ""
        print(
            f"pixvox pretrain {'STOPPED' if state.stopped_early else 'done'}: {state.step} steps in "
            f"{summary['seconds']:.0f} s | loss {summary.get('loss', float('nan')):.3f} | {which} voxel->pixel "
            f"top-1 {acc if acc is not None else float('nan'):.3f}{ratio} | checkpoint {summary['checkpoint']}"
        )
        print(json.dumps(summary))
    return summary


if __name__ == "__main__":
    main()
