"""The training loop shared by pretraining and fine-tuning.

It owns what every job needs: stepping the optimizer and schedule (with AMP and gradient clipping),
throughput and data-wait accounting, periodic and final checkpoints, ``--resume``, clean exit on
SIGTERM/SIGINT (cluster pre-emption), and logging. The task supplies ``step_fn(batch, step)``.

Skipped steps (docs/reliability.md): a step whose loss or gradients are not finite on any process,
whose batch is empty on any process (every sample unreadable) or whose step function raises
:class:`~pixvox.errors.EmptyBatchError` applies no update: no optimizer step, no GradScaler update,
BatchNorm running statistics restored. The step counter and the LR schedule still advance, so the
schedule, the batches (which depend on (seed, step)) and resuming stay those of the configured run.
``train.max_nonfinite_steps`` consecutive skips of one kind stop the run with a user error.
"""

from __future__ import annotations

import contextlib
import signal
import time
import warnings
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from pixvox.comm import DistInfo, all_reduce_sum
from pixvox.config.common import MAX_SKIPPED_FRACTION, TrainConfig
from pixvox.engine import checkpoint as ckpt
from pixvox.engine.logger import MetricLogger, log
from pixvox.engine.skips import LoadedBatch, SkippedSampleLog, fault_nan_steps
from pixvox.errors import (
    EmptyBatchError,
    EmptyBatchesError,
    NonFiniteTrainingError,
    TooManySkippedSamplesError,
)

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
    skipped_nonfinite: int = 0  #: steps skipped for a non-finite loss or gradients
    skipped_batches: int = 0  #: steps skipped for an empty batch (too few pairs, no samples)
    skipped_samples: int = 0  #: unreadable samples skipped, all processes (events)
    skipped_sample_files: int = 0  #: distinct unreadable files, summed over processes

    def skip_counts(self) -> dict[str, int]:
        """The skip counters, for metrics and summaries."""
        return {
            "skipped_nonfinite": self.skipped_nonfinite,
            "skipped_batches": self.skipped_batches,
            "skipped_samples": self.skipped_samples,
        }

    def restore_skips(self, saved: Mapping[str, Any]) -> None:
        """Continue the counters a checkpoint's ``skips`` entry holds (missing keys: zeros)."""
        for key in (*self.skip_counts(), "skipped_sample_files"):
            setattr(self, key, int(saved.get(key, 0)))


class Trainer:
    """Run ``step_fn`` from ``start_step`` to ``cfg.max_steps``.

    Args:
        model: the module whose parameters train (DDP-wrapped or not).
        step_fn: ``(batch, step) -> StepOutput``; called inside autocast when AMP is on.
        loader: yields one batch per step, already positioned at ``start_step``.
        state_dict_fn: what goes into a checkpoint's "model" entry (default: the model's state).
        eval_fn: ``(step) -> metrics`` run every ``eval_every`` steps and at the end.
        skips: the ``skips`` entry of the checkpoint resumed from: the skip counters continue.
        dataset_size: samples in the training set, for ``max_skipped_fraction`` (0 = no limit).
        max_skipped_fraction: distinct unreadable samples beyond this fraction stop the run.
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
        skips: Mapping[str, Any] | None = None,
        scaler: torch.amp.GradScaler | None = None,
        state_dict_fn: Callable[[], dict[str, Any]] | None = None,
        extra_checkpoint: Callable[[], dict[str, Any]] | None = None,
        eval_fn: Callable[[int], dict[str, float]] | None = None,
        eval_every: int = 0,
        dataset_size: int = 0,
        max_skipped_fraction: float = MAX_SKIPPED_FRACTION,
    ) -> None:
        self.model, self.step_fn, self.optimizer, self.scheduler = model, step_fn, optimizer, scheduler
        self.loader, self.cfg, self.dist, self.logger = loader, cfg, dist, logger
        self.run_dir = Path(run_dir)
        self.ckpt_dir = self.run_dir / "checkpoints"
        self.config_dict = dict(config_dict)
        self.scaler = scaler
        self.state = TrainState(step=start_step)
        if skips is not None:
            self.state.restore_skips(skips)
        self.state_dict_fn = state_dict_fn or (lambda: unwrap(model).state_dict())
        self.extra_checkpoint = extra_checkpoint
        self.eval_fn, self.eval_every = eval_fn, eval_every
        self._stop_signal: int | None = None
        self.dataset_size, self.max_skipped_fraction = dataset_size, max_skipped_fraction
        self.skip_log = SkippedSampleLog(self.run_dir, dist.rank)
        self.nan_steps = fault_nan_steps()
        self._in_a_row = {"nonfinite": 0, "empty": 0}

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
            "skips": {**self.state.skip_counts(), "skipped_sample_files": self.state.skipped_sample_files},
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

    def _any_rank(self, *flags: bool) -> list[bool]:
        """Each flag OR-ed over all processes (one small all-reduce), so every rank decides alike."""
        t = torch.tensor([1.0 if f else 0.0 for f in flags], device=self.dist.device)
        return [v > 0 for v in all_reduce_sum(t).tolist()]

    def _buffers(self) -> list[torch.Tensor]:
        return list(self.model.buffers())

    def _backward(self, loss: torch.Tensor, grad_clip: float) -> float:
        self.optimizer.zero_grad(set_to_none=True)
        if self.scaler is not None:
            self.scaler.scale(loss).backward()
            self.scaler.unscale_(self.optimizer)
        else:
            loss.backward()
        params = [p for g in self.optimizer.param_groups for p in g["params"] if p.grad is not None]
        norm = torch.nn.utils.clip_grad_norm_(params, grad_clip if grad_clip > 0 else float("inf"))
        return float(norm)

    def _update(self) -> None:
        if self.scaler is not None:
            # Non-finite gradients under fp16 with a finite loss are GradScaler's own overflow case:
            # it skips the update itself and lowers its scale.
            self.scaler.step(self.optimizer)
            self.scaler.update()
        else:
            self.optimizer.step()

    def _train_step(self, batch: Any, grad_clip: float) -> tuple[StepOutput | None, float, str | None]:
        """One step; returns (output, grad norm, why it was skipped: None, "empty" or "nonfinite")."""
        st = self.state
        if self._any_rank(batch is None)[0]:
            return None, float("nan"), "empty"
        saved = [b.detach().clone() for b in self._buffers()]
        out: StepOutput | None = None
        empty = False
        try:
            with self._autocast():
                out = self.step_fn(batch, st.step)
        except EmptyBatchError as err:
            log.warning("step %d: %s; the batch is skipped", st.step + 1, err)
            empty = True
        if out is not None and st.step + 1 in self.nan_steps:
            out.loss = out.loss + float("nan")  # testing hook, PIXVOX_FAULT_NAN_STEPS
            out.metrics = {**out.metrics, "loss": float("nan")}
        nonfinite = out is not None and not bool(torch.isfinite(out.loss.detach()).all())
        empty, nonfinite = self._any_rank(empty, nonfinite)
        grad_norm = float("nan")
        if not (empty or nonfinite):
            grad_norm = self._backward(out.loss, grad_clip)
            if self.scaler is None:
                nonfinite = self._any_rank(not torch.isfinite(torch.tensor(grad_norm)))[0]
            if not nonfinite:
                self._update()
                return out, grad_norm, None
        self.optimizer.zero_grad(set_to_none=True)
        with torch.no_grad():  # the forward pass already moved the BatchNorm running statistics
            for b, old in zip(self._buffers(), saved):
                b.copy_(old)
        return out, grad_norm, "empty" if empty else "nonfinite"

    def _count_skip(self, reason: str | None) -> None:
        st = self.state
        for kind in self._in_a_row:
            self._in_a_row[kind] = self._in_a_row[kind] + 1 if kind == reason else 0
        if reason is None:
            return
        if reason == "nonfinite":
            st.skipped_nonfinite += 1
        else:
            st.skipped_batches += 1
        n = self._in_a_row[reason]
        log.warning(
            "step %d skipped (%s; no update applied); %d in a row, %d allowed (train.max_nonfinite_steps)",
            st.step,
            "non-finite loss or gradients" if reason == "nonfinite" else "empty batch",
            n,
            self.cfg.max_nonfinite_steps,
        )
        if n < self.cfg.max_nonfinite_steps:
            return
        last = ckpt.latest_checkpoint(self.ckpt_dir)
        where = f"the last good checkpoint is {last}" if last else "no checkpoint was written yet"
        if reason == "nonfinite":
            raise NonFiniteTrainingError(
                f"training stopped at step {st.step}: the loss or the gradients were NaN/inf for {n} "
                f"consecutive steps (train.max_nonfinite_steps={self.cfg.max_nonfinite_steps}); {where}. "
                "Try a lower optim.lr, gradient clipping (optim.grad_clip, e.g. 1.0) or train.amp=none "
                "(or bf16 instead of fp16), then resume from that checkpoint (--resume force)."
            )
        raise EmptyBatchesError(
            f"training stopped at step {st.step}: {n} consecutive batches had nothing to learn from "
            f"(fewer than 2 matched pairs or no readable sample; train.max_nonfinite_steps="
            f"{self.cfg.max_nonfinite_steps}); {where}. Check the data (depths in data.depth_min.."
            f"data.depth_max, data.voxel_size) and {self.skip_log.path} if it exists."
        )

    def _record_skipped(self, item: Any) -> Any:
        """Unwrap a :class:`LoadedBatch`: log its skipped samples, stop past the allowed fraction.

        Any other item is a batch without skips; the all-reduce below runs for every item alike,
        so processes stay in step whatever their loaders yield."""
        if not isinstance(item, LoadedBatch):
            item = LoadedBatch(item, [])
        st = self.state
        new_files = self.skip_log.record(st.step + 1, item.skipped)
        for s in item.skipped:
            log.warning("skipped sample %s: %s", s.path, s.reason)
        t = torch.tensor([float(len(item.skipped)), float(new_files)], device=self.dist.device)
        events, files = (int(v) for v in all_reduce_sum(t).tolist())
        st.skipped_samples += events
        st.skipped_sample_files += files
        limit = self.max_skipped_fraction * self.dataset_size
        if self.dataset_size and st.skipped_sample_files > limit:
            last = f" (last: {item.skipped[-1].reason})" if item.skipped else ""
            raise TooManySkippedSamplesError(
                f"training stopped at step {st.step}: {st.skipped_sample_files} of {self.dataset_size} "
                f"prepared samples could not be read, more than data.max_skipped_fraction="
                f"{self.max_skipped_fraction}{last}. They are listed in {self.skip_log.path}; "
                "regenerate them (python -m pixvox.prep) or raise data.max_skipped_fraction."
            )
        return item.batch

    def run(self, grad_clip: float = 0.0) -> TrainState:
        st = self.state
        self.model.train()
        t_start = time.perf_counter()
        window = {"t": time.perf_counter(), "wait": 0.0, "items": 0, "steps": 0}
        it = iter(self.loader)
        if st.step < self.cfg.max_steps:  # the moment a launch is timed to (issue 17: within 5 s)
            log.info("training: steps %d-%d", st.step + 1, self.cfg.max_steps)
        with self._signals():
            while st.step < self.cfg.max_steps:
                t0 = time.perf_counter()
                try:
                    batch = next(it)
                except StopIteration:
                    raise RuntimeError("the data loader ended before train.max_steps") from None
                wait = time.perf_counter() - t0
                batch = self._record_skipped(batch)
                out, grad_norm, skipped = self._train_step(batch, grad_clip)
                if skipped is not None:
                    # The schedule advances on a skipped step too (see the module doc); torch warns
                    # when that happens before the first optimizer step.
                    with warnings.catch_warnings():
                        warnings.simplefilter("ignore", UserWarning)
                        self.scheduler.step()
                else:
                    self.scheduler.step()
                st.step += 1
                self._count_skip(skipped)
                st.data_wait_seconds += wait
                window["wait"] += wait
                window["items"] += out.items if out is not None and skipped is None else 0
                window["steps"] += 1
                self.logger.advance()
                if st.step % self.cfg.log_every == 0 or st.step == self.cfg.max_steps:
                    dt = time.perf_counter() - window["t"]
                    items = float(all_reduce_sum(torch.tensor([float(window["items"])])).item())
                    metrics = {
                        **(out.metrics if out is not None else {}),
                        "lr": self.scheduler.get_last_lr()[0],
                        "grad_norm": grad_norm,
                        "pairs_s": items / max(dt, 1e-9),
                        "s_per_step": dt / window["steps"],
                        "data_wait": window["wait"] / max(dt, 1e-9),
                        **st.skip_counts(),
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
