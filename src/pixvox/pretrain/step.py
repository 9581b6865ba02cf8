"""One pretraining step: run the networks once, then every objective of ``loss.terms``.

Stage marks (read by pixvox.bench.pretrain): ``transfer``, per objective ``prepare`` (masked_2d: the
frozen teacher backbone, matching and masking), ``forward`` (``student_forward`` and
``teacher_forward`` inside), then per objective ``pairs`` (``matching`` inside for PPKT) and ``loss``.
"""

from __future__ import annotations

from typing import Any

import torch

from pixvox.config.pretrain import PretrainConfig
from pixvox.engine import timing
from pixvox.engine.trainer import StepOutput
from pixvox.objectives import Objective, ObjectiveResult, build_objectives

PAIR_STREAM = 0x5BD1E995  # decorrelates pair sampling from the augmentation stream of the same seed
HEADLINE = ("acc", "chance", "pairs")  #: the first term's metrics also logged without its suffix


@timing.timed("transfer")
def to_device(batch: dict[str, Any], device: torch.device) -> dict[str, Any]:
    non_blocking = device.type == "cuda"
    return {k: v.to(device, non_blocking=non_blocking) if torch.is_tensor(v) else v for k, v in batch.items()}


class PretrainStep:
    """Callable ``(batch, step) -> StepOutput`` for :class:`pixvox.engine.trainer.Trainer`.

    The loss is ``Σ weight_t × loss_t`` over the terms. Logged: ``loss`` (the same weighted sum of the
    global mean losses), ``<metric>_<objective>`` for every metric of every term (``loss_ppkt``,
    ``acc_pointcontrast``, ...), and the first term's ``acc``, ``chance``, ``pairs`` unsuffixed.
    """

    def __init__(self, model: torch.nn.Module, cfg: PretrainConfig, device: torch.device) -> None:
        self.model, self.cfg, self.device = model, cfg, device
        self.objectives: list[Objective] = build_objectives(cfg)
        # Stage timers for pixvox.bench.pretrain (forward hooks; one global read while nothing records).
        net = getattr(model, "module", model)  # DDP keeps the network in .module
        timing.time_module(model, "forward")
        for name, part in (("student_forward", "student"), ("teacher_forward", "teacher")):
            module = getattr(net, part, None)
            if isinstance(module, torch.nn.Module):
                timing.time_module(module, name)

    def term_results(self, batch: dict[str, Any], gather: bool = True) -> list[ObjectiveResult]:
        """Every term's unweighted result for ``batch`` (in the order of ``loss.terms``)."""
        batch = to_device(batch, self.device)
        seeds = [int(s) ^ PAIR_STREAM for s in batch["seeds"]]
        net = getattr(self.model, "module", self.model)
        for objective in self.objectives:
            with timing.stage("prepare"):
                objective.prepare(batch, net, seeds)
        out = self.model(batch)
        results = []
        for objective in self.objectives:
            with timing.stage("pairs"):
                pairs = objective.select_pairs(batch, out, seeds)
            with timing.stage("loss"):
                results.append(objective.score(out, pairs, gather=gather))
        return results

    def losses(
        self, batch: dict[str, Any], gather: bool = True
    ) -> tuple[torch.Tensor, dict[str, float], int]:
        """``(weighted loss to back-propagate, metrics, items)`` of one batch."""
        results = self.term_results(batch, gather)
        total: torch.Tensor | None = None
        metrics: dict[str, float] = {"loss": 0.0}
        for objective, res in zip(self.objectives, results):
            w = objective.term.weight
            total = w * res.loss if total is None else total + w * res.loss
            metrics["loss"] += w * res.metrics["loss"]
            metrics.update({f"{k}_{objective.term.name}": v for k, v in res.metrics.items()})
        metrics.update({k: results[0].metrics[k] for k in HEADLINE if k in results[0].metrics})
        assert total is not None  # LossConfig guarantees at least one term
        return total, metrics, sum(r.items for r in results)

    def __call__(self, batch: dict[str, Any], step: int) -> StepOutput:
        loss, metrics, items = self.losses(batch)
        return StepOutput(loss=loss, metrics=metrics, items=items)
