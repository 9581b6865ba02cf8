"""Evaluation on the original points: voxel predictions are carried to every point by the voxelization's
inverse map; metrics count points, as the benchmarks do."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from pixvox.comm import all_reduce_sum, rank, world_size
from pixvox.datasets.segmentation import IGNORE, SegmentationDataset, collate_segmentation
from pixvox.evaluation.export import write_prediction_plys
from pixvox.evaluation.metrics import SegmentationMetrics, confusion_matrix
from pixvox.finetune.step import to_device


def predict_points(
    model: torch.nn.Module, item: dict, device: torch.device
) -> tuple[torch.Tensor, torch.Tensor]:
    """Point logits ``[N, C]`` (float32, CPU) and predicted class ids ``[N]`` (int64) of one dataset item."""
    batch = to_device(collate_segmentation([item]), device)
    voxel_logits = model(batch["feats"], batch["coords"]).float()
    point_logits = voxel_logits[batch["inverse"]].cpu()
    return point_logits, point_logits.argmax(1)


@torch.no_grad()
def evaluate(
    model: torch.nn.Module,
    dataset: SegmentationDataset,
    device: torch.device,
    export_dir: str | Path | None = None,
    export_count: int = 0,
) -> tuple[SegmentationMetrics, float]:
    """Metrics over every scene of ``dataset`` (processes share the scenes; the confusion matrix is
    summed over processes) and the mean point cross-entropy. Scenes with position < ``export_count``
    (all for -1) are written as colored PLYs to ``export_dir``. Leaves ``model`` in its previous mode."""
    was_training = model.training
    model.eval()
    c = dataset.num_classes
    cm = np.zeros((c, c), np.int64)
    loss_sum, counted = 0.0, 0
    try:
        for i in range(rank(), len(dataset.scenes), world_size()):
            item = dataset[(i, 0)]
            logits, pred = predict_points(model, item, device)
            target = item["point_labels"]
            cm += confusion_matrix(pred, target, c)
            loss_sum += float(F.cross_entropy(logits, target, ignore_index=IGNORE, reduction="sum"))
            counted += int((target != IGNORE).sum())
            if export_dir is not None and (export_count < 0 or i < export_count):
                xyz = dataset.index.load_scene(item["name"]).xyz
                write_prediction_plys(export_dir, item["name"], xyz, pred.numpy(), target.numpy(), c)
    finally:
        model.train(was_training)
    flat = torch.from_numpy(np.concatenate([cm.reshape(-1).astype(np.float64), [loss_sum, counted]]))
    flat = all_reduce_sum(flat.to(device)).cpu().numpy()
    cm = np.rint(flat[: c * c]).astype(np.int64).reshape(c, c)
    loss = float(flat[-2] / flat[-1]) if flat[-1] > 0 else float("nan")
    return SegmentationMetrics.from_confusion(cm, dataset.class_names), loss
