"""The job assembly every training task reuses (in the spirit of detectron2's ``DefaultTrainer``).

:class:`TrainingJob` owns what pretraining and fine-tuning share: thread count, process group,
run folder and resolved config, synchronized BatchNorm and the DDP wrap, optimizer, schedule and
AMP scaler, the resume policy (pixvox.engine.resume), the resumable data loader, the metric logger
and the :class:`~pixvox.engine.trainer.Trainer`. A task subclasses it and fills in the hooks: its
data, its network, its step, its evaluation and its summary (pixvox.pretrain.run, pixvox.finetune.run).

Order of :meth:`TrainingJob.run`: save config → ``prepare_data`` (single process) → ``build_data``
→ seed → ``build_network`` → sync BN + DDP → optimizer / schedule → resume → ``initialize_fresh``
(only when no checkpoint was resumed) → loader → ``build_step`` / ``build_eval`` → train →
``after_training`` → curves → ``summarize``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar

import torch
from torch import nn

from pixvox.comm import DistInfo, barrier, convert_to_distributed_batchnorm, init_distributed
from pixvox.config import from_dict, save_config, to_dict
from pixvox.engine.launch import JobInfo, run_job
from pixvox.engine.logger import MetricLogger, log, setup_console_logging
from pixvox.engine.optim import build_optimizer, build_scheduler
from pixvox.engine.resume import Provenance, ResumeRequest, parse_resume, resume_training
from pixvox.engine.sampler import ResumableBatchSampler
from pixvox.engine.skips import SkipAwareCollate
from pixvox.engine.threads import ThreadChoice, plan_threads
from pixvox.engine.trainer import StepOutput, Trainer, TrainState

__all__ = ["TrainingJob", "wrap_for_training"]


def wrap_for_training(
    net: nn.Module, dist: DistInfo, sync_bn: bool, sync_scope: nn.Module | None
) -> nn.Module:
    """Move ``net`` to the device; with several processes synchronize the BatchNorms inside
    ``sync_scope`` (a part of ``net``; None = none) and wrap ``net`` in DistributedDataParallel.

    Returns the module that trains (``net`` itself in a single process)."""
    if dist.world_size > 1 and sync_bn and sync_scope is not None:
        if dist.device.type == "cuda":
            from pixvox.models import convert_sync_batchnorm

            converted = convert_sync_batchnorm(sync_scope)
        else:
            converted = convert_to_distributed_batchnorm(sync_scope)
        if converted is not sync_scope:
            raise ValueError("sync_bn_scope() must return a module that holds BatchNorms, not a BatchNorm")
    net.to(dist.device)
    if dist.world_size == 1:
        return net
    return torch.nn.parallel.DistributedDataParallel(
        net, device_ids=[dist.device.index] if dist.device.type == "cuda" else None, broadcast_buffers=False
    )


class TrainingJob:
    """One training job. Subclasses set :attr:`info` and implement the hooks below.

    Attributes available to the hooks: ``cfg`` (the resolved config), ``dist``, ``run_dir``,
    ``threads``; after ``build_network``: ``net`` (the bare network) and ``model`` (what trains,
    DDP-wrapped with several processes).
    """

    info: ClassVar[JobInfo]

    def __init__(self, cfg: Any, dist: DistInfo, threads: ThreadChoice) -> None:
        self.cfg, self.dist, self.threads = cfg, dist, threads
        self.run_dir = Path(cfg.experiment.output_root) / cfg.experiment.name
        self.net: nn.Module = nn.Module()
        self.model: nn.Module = self.net

    # ------------------------------------------------------------------ entry points
    @classmethod
    def main(cls, argv: list[str] | None = None) -> dict[str, Any]:
        """Command-line entry: ``[CONFIG] [overrides] [--resume ...] [--prepare-data]``."""
        return run_job(cls.info.name, argv)

    @classmethod
    def launch(cls, cfg: Any, resume: str = "auto") -> dict[str, Any]:
        """Run the job with a loaded config in this process (joining torchrun's process group if any)."""
        threads = plan_threads(cfg.train.num_workers, cfg.train.cpu_threads)
        dist = init_distributed(cfg.train.device)
        setup_console_logging(dist.is_main)
        previous = torch.get_num_threads()
        torch.set_num_threads(threads.threads)
        try:
            return cls(cfg, dist, threads).run(parse_resume(resume))
        finally:
            torch.set_num_threads(previous)  # in-process callers (tests, tools/compare_init.py) keep theirs

    # ------------------------------------------------------------------ hooks
    @classmethod
    def prepare_data(cls, cfg: Any) -> None:
        """Make sure the config's data exist (generate or convert them where the config says how)."""

    def build_data(self) -> torch.utils.data.Dataset:
        """The training dataset; keep whatever else the job needs (held-out sets) on ``self``."""
        raise NotImplementedError

    def collate(self, samples: list[Any]) -> Any:
        """Samples of one process's batch → the batch ``build_step``'s function takes (never empty:
        samples the dataset skipped, :class:`~pixvox.datasets.skipped.SkippedSample`, are removed
        first, and a batch without any is skipped by the trainer)."""
        raise NotImplementedError

    def build_network(self) -> nn.Module:
        """The network (weights initialized; the RNG is seeded with ``experiment.seed`` before)."""
        raise NotImplementedError

    def build_model(self) -> nn.Module:
        """Seed, build the network (``self.net``) and what trains (``self.model``: on the device, BatchNorm
        synchronized and DDP-wrapped with several processes); returns ``self.model``."""
        torch.manual_seed(self.cfg.experiment.seed)  # same initial weights on every rank
        self.net = self.build_network()
        self.model = wrap_for_training(self.net, self.dist, self.cfg.train.sync_bn, self.sync_bn_scope())
        return self.model

    def initialize_fresh(self) -> None:
        """Initialization only a run that starts at step 0 needs: a resumed run's checkpoint already
        holds its result, so the work is skipped there. Runs after the DDP wrap, which has already
        synchronized the weights: anything computed here must end up equal on every process (compute
        on the main process, then :func:`pixvox.comm.broadcast_tensors`)."""

    def sync_bn_scope(self) -> nn.Module | None:
        """The part of ``net`` whose BatchNorms synchronize across processes (None = none)."""
        return self.net

    def param_groups(self) -> list[dict[str, Any]]:
        """The optimizer's parameter groups (``{"params": [...], "lr": ...}``); each group's lr follows the
        schedule. Default: every parameter of ``net`` at ``optim.lr``."""
        return [{"params": list(self.net.parameters()), "lr": self.cfg.optim.lr}]

    def model_state(self) -> dict[str, torch.Tensor]:
        """The checkpoint's ``model`` entry; a resume must find exactly these tensors."""
        return self.net.state_dict()

    def checkpoint_extras(self) -> dict[str, Any]:
        """More entries of every checkpoint (e.g. the student's weights for fine-tuning)."""
        return {}

    def weight_files(self) -> dict[str, Path]:
        """Weight files the run read (``{config key: path}``); hashed into checkpoints, compared on resume."""
        return {}

    def build_step(self) -> Callable[[Any, int], StepOutput]:
        """``(batch, step) -> StepOutput`` for the trainer (uses ``self.model``)."""
        raise NotImplementedError

    def build_eval(self) -> tuple[Callable[[int], dict[str, float]] | None, int]:
        """``(eval_fn, every)``: evaluation during training; ``(None, 0)`` for none."""
        return None, 0

    def start_note(self) -> str:
        """Extra words for the log line that opens the run."""
        return ""

    def after_training(self, state: TrainState, logger: MetricLogger) -> None:
        """Work after the last step, before the logger closes (final evaluation)."""

    def summarize(self, state: TrainState, curves: Path | None, train_seconds: float) -> dict[str, Any]:
        """Write and print the run's summary; return it."""
        raise NotImplementedError

    # ------------------------------------------------------------------ assembly
    def build_loader(self, dataset: torch.utils.data.Dataset, start_step: int) -> torch.utils.data.DataLoader:
        """A loader positioned at ``start_step``: batches depend only on (seed, step), for any world size."""
        t = self.cfg.train
        sampler = ResumableBatchSampler(
            len(dataset),
            t.batch_size,  # the global batch, split across processes
            self.dist.rank,
            self.dist.world_size,
            self.cfg.experiment.seed,
            start_step=start_step,
            max_steps=t.max_steps,
        )
        return torch.utils.data.DataLoader(
            dataset,
            batch_sampler=sampler,
            collate_fn=SkipAwareCollate(self.collate),
            num_workers=t.num_workers,
            pin_memory=self.dist.device.type == "cuda",
            persistent_workers=False,
            prefetch_factor=4 if t.num_workers else None,
        )

    def run(self, resume: ResumeRequest) -> dict[str, Any]:
        cfg, dist = self.cfg, self.dist
        if dist.is_main:
            save_config(cfg, self.run_dir / "config.yaml")
            log.info(
                "run dir %s | %d process(es) on %s (%s)%s | %s",
                self.run_dir,
                dist.world_size,
                dist.device,
                dist.backend or "single",
                self.start_note(),
                self.threads.describe(),
            )
        if dist.world_size == 1:
            self.prepare_data(cfg)  # several processes: the launcher prepared them (--prepare-data)
        train_ds = self.build_data()
        self.build_model()
        optimizer = build_optimizer(self.param_groups(), cfg.optim)
        scheduler = build_scheduler(optimizer, cfg.schedule, cfg.train.max_steps)
        use_scaler = cfg.train.amp == "fp16" and dist.device.type == "cuda"
        scaler = torch.amp.GradScaler("cuda") if use_scaler else None

        provenance = Provenance(
            to_dict(cfg),
            self.weight_files(),
            to_dict(type(cfg)()),
            normalize=lambda saved: to_dict(from_dict(type(cfg), saved)),
        )
        provenance.file_records()  # hash now: the files as this run read them
        skips: dict[str, Any] = {}  # the skip counters of the checkpoint resumed from (they continue)
        start_step = resume_training(
            resume,
            self.run_dir / "checkpoints",
            provenance=provenance,
            net=self.net,
            model_keys=self.model_state().keys(),
            optimizer=optimizer,
            scheduler=scheduler,
            scaler=scaler,
            device=dist.device,
            restore=lambda state: skips.update(state.get("skips", {})),
        )
        if start_step == 0:
            self.initialize_fresh()
        if start_step >= cfg.train.max_steps:
            log.info("nothing to do: the run already reached train.max_steps=%d", cfg.train.max_steps)

        loader = self.build_loader(train_ds, start_step)
        step_fn = self.build_step()
        eval_fn, eval_every = self.build_eval()
        logger = MetricLogger(
            self.run_dir,
            cfg.train.max_steps,
            start_step,
            enabled=dist.is_main,
            progress_bar=cfg.logging.progress_bar,
            wandb_mode=cfg.logging.wandb,
            wandb_project=cfg.logging.wandb_project,
            run_name=cfg.experiment.name,
            config=provenance.config,
        )
        trainer = Trainer(
            model=self.model,
            step_fn=step_fn,
            optimizer=optimizer,
            scheduler=scheduler,
            loader=loader,
            cfg=cfg.train,
            run_dir=self.run_dir,
            dist=dist,
            logger=logger,
            config_dict=provenance.config,
            start_step=start_step,
            skips=skips,
            scaler=scaler,
            state_dict_fn=self.model_state,
            extra_checkpoint=lambda: {**self.checkpoint_extras(), "weight_files": provenance.file_records()},
            eval_fn=eval_fn,
            eval_every=eval_every,
            dataset_size=getattr(train_ds, "num_files", len(train_ds)),
            max_skipped_fraction=cfg.data.max_skipped_fraction,
        )
        t0 = time.perf_counter()
        state = (
            trainer.run(grad_clip=cfg.optim.grad_clip) if start_step < cfg.train.max_steps else trainer.state
        )
        train_seconds = time.perf_counter() - t0
        self.after_training(state, logger)
        curves = logger.close()
        barrier()
        return self.summarize(state, curves, train_seconds)
