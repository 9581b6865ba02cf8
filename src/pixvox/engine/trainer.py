"""The training loop shared by pretraining and fine-tuning.

It owns what every job needs: stepping the optimizer and schedule (with AMP and gradient clipping),
throughput and data-wait accounting, periodic and final checkpoints, ``--resume``, clean exit on
SIGTERM/SIGINT (cluster pre-emption), and logging. The task supplies ``step_fn(batch, step)``.
"""

from __future__ import annotations

import contextlib
import signal
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from pixvox.comm import DistInfo, all_reduce_sum
from pixvox.config.common import TrainConfig
from pixvox.engine import checkpoint as ckpt
from pixvox.engine.logger import MetricLogger, log

CHECKPOINT_FORMAT = "pixvox.checkpoint/1"


@dataclass
class StepOutput:
    loss: torch.Tensor  #: what this process back-propagates
    metrics: dict[str, float] = field(default_factory=dict)  #: global values, logged as they are
    items: int = 0  #: units of work this step (pairs, points) for the throughput figure


def unwrap(model: nn.Module) -> nn.Module:
    return model.module if hasattr(model, "module") else model


@dataclass
class TrainState:
    step: int = 0
    stopped_early: bool = False
    last_metrics: dict[str, float] = field(default_factory=dict)
    checkpoint: Path | None = None
    seconds: float = 0.0
    data_wait_seconds: float = 0.0


class Trainer:
    """Run ``step_fn`` from ``start_step`` to ``cfg.max_steps``.

    Args:
        model: the module whose parameters train (DDP-wrapped or not).
        step_fn: ``(batch, step) -> StepOutput``; called inside autocast when AMP is on.
        loader: yields one batch per step, already positioned at ``start_step``.
        state_dict_fn: what goes into a checkpoint's "model" entry (default: the model's state).
        eval_fn: ``(step) -> metrics`` run every ``eval_every`` steps and at the end.
    """

    def __init__(
        self,
        *,
        model: nn.Module,
        step_fn: Callable[[Any, int], StepOutput],
        optimizer: torch.optim.Optimizer,
        scheduler: torch.optim.lr_scheduler.LRScheduler,
        loader: Iterable,
        cfg: TrainConfig,
        run_dir: str | Path,
        dist: DistInfo,
        logger: MetricLogger,
        config_dict: Mapping[str, Any],
        start_step: int = 0,
        scaler: torch.amp.GradScaler | None = None,
        state_dict_fn: Callable[[], dict[str, Any]] | None = None,
        extra_checkpoint: Callable[[], dict[str, Any]] | None = None,
        eval_fn: Callable[[int], dict[str, float]] | None = None,
        eval_every: int = 0,
    ) -> None:
        self.model, self.step_fn, self.optimizer, self.scheduler = model, step_fn, optimizer, scheduler
        self.loader, self.cfg, self.dist, self.logger = loader, cfg, dist, logger
        self.run_dir = Path(run_dir)
        self.ckpt_dir = self.run_dir / "checkpoints"
        self.config_dict = dict(config_dict)
        self.scaler = scaler
        self.state = TrainState(step=start_step)
        self.state_dict_fn = state_dict_fn or (lambda: unwrap(model).state_dict())
        self.extra_checkpoint = extra_checkpoint
        self.eval_fn, self.eval_every = eval_fn, eval_every
        self._stop_signal: int | None = None

    # ------------------------------------------------------------------ checkpoints
    def checkpoint_state(self) -> dict[str, Any]:
        state = {
            "format": CHECKPOINT_FORMAT,
            "step": self.state.step,
            "model": self.state_dict_fn(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "rng": ckpt.rng_state(),
            "config": self.config_dict,
        }
        if self.scaler is not None:
            state["scaler"] = self.scaler.state_dict()
        if self.extra_checkpoint is not None:
            state.update(self.extra_checkpoint())
        return state

    def save(self) -> Path | None:
        path = None
        if self.dist.is_main:
            path = ckpt.save_checkpoint(
                self.ckpt_dir, self.state.step, self.checkpoint_state(), self.cfg.keep_checkpoints
            )
            log.info("saved checkpoint %s", path)
        self.state.checkpoint = path
        return path

    # ------------------------------------------------------------------ signals
    def _on_signal(self, signum, _frame) -> None:
        if self._stop_signal is None:
            log.warning(
                "received %s: finishing this step, saving a checkpoint, then exiting",
                signal.Signals(signum).name,
            )
        self._stop_signal = signum

    @contextlib.contextmanager
    def _signals(self):
        old = {s: signal.signal(s, self._on_signal) for s in (signal.SIGTERM, signal.SIGINT)}
        try:
            yield
        finally:
            for s, h in old.items():
                signal.signal(s, h)

    def _should_stop(self) -> bool:
        # Every rank must agree, or one would wait forever in the next collective.
        flag = torch.tensor([1.0 if self._stop_signal is not None else 0.0])
        return bool(all_reduce_sum(flag.to(self.dist.device)).item() > 0)

    # ------------------------------------------------------------------ loop
    def _autocast(self):
        if self.cfg.amp == "none" or self.dist.device.type != "cuda":
            return contextlib.nullcontext()
        dtype = torch.bfloat16 if self.cfg.amp == "bf16" else torch.float16
        return torch.autocast("cuda", dtype=dtype)

    def _optimize(self, loss: torch.Tensor, grad_clip: float) -> float:
        self.optimizer.zero_grad(set_to_none=True)
        if self.scaler is not None:
            self.scaler.scale(loss).backward()
            self.scaler.unscale_(self.optimizer)
        else:
            loss.backward()
        params = [p for g in self.optimizer.param_groups for p in g["params"] if p.grad is not None]
        norm = torch.nn.utils.clip_grad_norm_(params, grad_clip if grad_clip > 0 else float("inf"))
        if self.scaler is not None:
            self.scaler.step(self.optimizer)
            self.scaler.update()
        else:
            self.optimizer.step()
        self.scheduler.step()
        return float(norm)

    def run(self, grad_clip: float = 0.0) -> TrainState:
        st = self.state
        self.model.train()
        t_start = time.perf_counter()
        window = {"t": time.perf_counter(), "wait": 0.0, "items": 0, "steps": 0}
        it = iter(self.loader)
        with self._signals():
            while st.step < self.cfg.max_steps:
                t0 = time.perf_counter()
                try:
                    batch = next(it)
                except StopIteration:
                    raise RuntimeError("the data loader ended before train.max_steps") from None
                wait = time.perf_counter() - t0
                with self._autocast():
                    out = self.step_fn(batch, st.step)
                grad_norm = self._optimize(out.loss, grad_clip)
                st.step += 1
                st.data_wait_seconds += wait
                window["wait"] += wait
                window["items"] += out.items
                window["steps"] += 1
                self.logger.advance()
                if st.step % self.cfg.log_every == 0 or st.step == self.cfg.max_steps:
                    dt = time.perf_counter() - window["t"]
                    items = float(all_reduce_sum(torch.tensor([float(window["items"])])).item())
                    metrics = {
                        **out.metrics,
                        "lr": self.scheduler.get_last_lr()[0],
                        "grad_norm": grad_norm,
                        "pairs_s": items / max(dt, 1e-9),
                        "s_per_step": dt / window["steps"],
                        "data_wait": window["wait"] / max(dt, 1e-9),
                    }
                    st.last_metrics = metrics
                    self.logger.log(st.step, metrics)
                    window = {"t": time.perf_counter(), "wait": 0.0, "items": 0, "steps": 0}
                if self.eval_fn is not None and self.eval_every and st.step % self.eval_every == 0:
                    self._evaluate()
                stop = self._should_stop()
                if st.step % self.cfg.checkpoint_every == 0 or st.step == self.cfg.max_steps or stop:
                    self.save()
                if stop:
                    st.stopped_early = True
                    log.warning("stopped at step %d after a signal; resume with --resume auto", st.step)
                    break
        if (
            not st.stopped_early
            and self.eval_fn is not None
            and not (self.eval_every and st.step % self.eval_every == 0)
        ):
            self._evaluate()
        st.seconds = time.perf_counter() - t_start
        return st

    def _evaluate(self) -> None:
        self.model.eval()
        with torch.no_grad():
            metrics = self.eval_fn(self.state.step)
        self.model.train()
        if metrics:
            self.state.last_metrics.update(metrics)
            self.logger.log(self.state.step, metrics)
