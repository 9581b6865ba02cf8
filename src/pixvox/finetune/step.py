"""One fine-tuning step: cross-entropy on the labeled voxels, normalized over all processes."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

from pixvox.comm import all_reduce_sum, world_size
from pixvox.datasets.segmentation import IGNORE
from pixvox.engine.trainer import StepOutput
from pixvox.errors import EmptyBatchError


def to_device(batch: dict[str, Any], device: torch.device) -> dict[str, Any]:
    non_blocking = device.type == "cuda"
    return {k: v.to(device, non_blocking=non_blocking) if torch.is_tensor(v) else v for k, v in batch.items()}


class SegmentationStep:
    """Callable ``(batch, step) -> StepOutput`` for :class:`pixvox.engine.trainer.Trainer`.

    The loss is the (class-weighted) mean cross-entropy over the labeled voxels of the *global* batch:
    each process divides its sum by the all-process weight total and multiplies by the world size,
    which DistributedDataParallel's gradient averaging undoes, so any number of processes trains
    exactly like one, even when a process holds few or no labeled voxels (sparse label budgets).
    A global batch without any labeled voxel raises :class:`~pixvox.errors.EmptyBatchError`.
    """

    def __init__(
        self,
        model: torch.nn.Module,
        device: torch.device,
        class_weights: torch.Tensor | None = None,
        label_smoothing: float = 0.0,
    ) -> None:
        self.model, self.device = model, device
        self.weights = class_weights.to(device) if class_weights is not None else None
        self.label_smoothing = label_smoothing

    def __call__(self, batch: dict[str, Any], step: int) -> StepOutput:
        batch = to_device(batch, self.device)
        logits = self.model(batch["feats"], batch["coords"])
        labels = batch["labels"]
        labeled = labels != IGNORE
        lab = labels[labeled]
        # The loss in at least float32, also under autocast (bf16/fp16 logits).
        x = logits if logits.dtype == torch.float64 else logits.float()
        weights = self.weights.to(x.dtype) if self.weights is not None else None
        w = weights[lab] if weights is not None else torch.ones_like(lab, dtype=x.dtype)
        ce_sum = F.cross_entropy(
            x,
            labels,
            weight=weights,
            ignore_index=IGNORE,
            reduction="sum",
            label_smoothing=self.label_smoothing,
        )
        correct = (logits[labeled].argmax(1) == lab).sum()
        totals = all_reduce_sum(
            torch.stack(
                [w.sum().double(), labeled.sum().double(), correct.double(), ce_sum.detach().double()]
            )
        )
        weight_total, n_labeled, n_correct, ce_total = totals.tolist()
        if weight_total <= 0:
            # No labeled voxel in the global batch (every process sees the same totals, so all skip):
            # nothing to learn from; the trainer skips and counts the step (docs/reliability.md).
            raise EmptyBatchError("no labeled voxel in the batch (all labels ignored or outside the crops)")
        loss = ce_sum * (world_size() / weight_total)
        metrics = {
            "loss": ce_total / weight_total,
            "acc": n_correct / n_labeled if n_labeled else float("nan"),
            "labeled_voxels": n_labeled,
        }
        return StepOutput(loss=loss, metrics=metrics, items=int(labels.shape[0]))
