"""Semantic-segmentation metrics from a confusion matrix: mIoU, mAcc, overall accuracy, per-class IoU.

Conventions (those of the ScanNet/S3DIS evaluations used by sparse-voxel pretraining papers):
- The confusion matrix counts points: row = ground-truth class, column = predicted class. Points whose
  ground truth is the ignore label are not counted.
- IoU_c = TP / (TP + FP + FN); Acc_c (recall) = TP / (TP + FN).
- A class absent from the evaluated ground truth has no defined IoU or accuracy (NaN, shown "n/a"):
  it is left out of mIoU and mAcc. Its false positives still count, as false negatives of the true
  classes of those points. Over a whole benchmark split every class is present, so this is the usual mean.
- Overall accuracy = trace / number of counted points.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

ArrayLike = np.ndarray | torch.Tensor


def _as_int64(x: ArrayLike, what: str) -> np.ndarray:
    a = x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x)
    if a.dtype.kind not in "iu":
        raise TypeError(f"{what} must hold integer class ids, got dtype {a.dtype}")
    return a.astype(np.int64).reshape(-1)


def confusion_matrix(
    pred: ArrayLike, target: ArrayLike, num_classes: int, ignore_index: int = -1
) -> np.ndarray:
    """``[C, C]`` int64 counts of (ground truth, prediction) over points whose target is not ``ignore_index``.

    Args:
        pred: ``[N]`` predicted class ids in ``0..C-1``.
        target: ``[N]`` ground-truth class ids in ``0..C-1`` or ``ignore_index``.
    """
    p, t = _as_int64(pred, "pred"), _as_int64(target, "target")
    if p.shape != t.shape:
        raise ValueError(f"pred and target need the same number of points, got {p.shape[0]} and {t.shape[0]}")
    keep = t != ignore_index
    p, t = p[keep], t[keep]
    if t.size and (t.min() < 0 or t.max() >= num_classes):
        raise ValueError(
            f"target ids span [{t.min()}, {t.max()}], outside 0..{num_classes - 1} (ignore {ignore_index})"
        )
    if p.size and (p.min() < 0 or p.max() >= num_classes):
        raise ValueError(f"predicted ids span [{p.min()}, {p.max()}], outside 0..{num_classes - 1}")
    counts = np.bincount(t * num_classes + p, minlength=num_classes * num_classes)
    return counts.reshape(num_classes, num_classes)


def _nan_if_empty(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    out = np.full(num.shape, np.nan)
    ok = den > 0
    out[ok] = num[ok] / den[ok]
    return out


@dataclass
class SegmentationMetrics:
    """Metrics of one confusion matrix. Per-class arrays are float64 ``[C]`` with NaN for classes absent
    from the ground truth; the means are over the classes present (NaN when no point was counted)."""

    class_names: list[str]
    confusion: np.ndarray  #: int64 [C, C], row = ground truth, column = prediction
    iou: np.ndarray
    acc: np.ndarray
    miou: float
    macc: float
    oa: float

    @classmethod
    def from_confusion(cls, confusion: np.ndarray, class_names: Sequence[str]) -> SegmentationMetrics:
        cm = np.asarray(confusion, dtype=np.int64)
        c = len(class_names)
        if cm.shape != (c, c):
            raise ValueError(f"confusion matrix is {cm.shape}, expected ({c}, {c}) for {c} class names")
        tp = np.diag(cm).astype(np.float64)
        gt = cm.sum(1).astype(np.float64)
        predicted = cm.sum(0).astype(np.float64)
        present = gt > 0
        iou = _nan_if_empty(tp, gt + predicted - tp)
        iou[~present] = np.nan
        acc = _nan_if_empty(tp, gt)
        total = gt.sum()
        return cls(
            class_names=list(class_names),
            confusion=cm,
            iou=iou,
            acc=acc,
            miou=float(iou[present].mean()) if present.any() else float("nan"),
            macc=float(acc[present].mean()) if present.any() else float("nan"),
            oa=float(tp.sum() / total) if total else float("nan"),
        )

    @classmethod
    def from_predictions(
        cls, pred: ArrayLike, target: ArrayLike, class_names: Sequence[str], ignore_index: int = -1
    ) -> SegmentationMetrics:
        return cls.from_confusion(confusion_matrix(pred, target, len(class_names), ignore_index), class_names)

    @property
    def num_points(self) -> int:
        return int(self.confusion.sum())

    def to_json(self) -> dict[str, Any]:
        """Plain JSON values (NaN → None), with the confusion matrix."""

        def num(x: float) -> float | None:
            return None if not np.isfinite(x) else round(float(x), 6)

        gt, pred = self.confusion.sum(1), self.confusion.sum(0)
        return {
            "miou": num(self.miou),
            "macc": num(self.macc),
            "oa": num(self.oa),
            "num_points": self.num_points,
            "per_class": {
                name: {
                    "iou": num(self.iou[i]),
                    "acc": num(self.acc[i]),
                    "gt_points": int(gt[i]),
                    "predicted_points": int(pred[i]),
                }
                for i, name in enumerate(self.class_names)
            },
            "class_names": list(self.class_names),
            "confusion": self.confusion.tolist(),
        }


def constant_prediction_metrics(
    gt_counts: ArrayLike, predicted_class: int, class_names: Sequence[str]
) -> SegmentationMetrics:
    """Metrics of predicting ``predicted_class`` for every point, given ground-truth class counts ``[C]``
    (the majority-class baseline when ``predicted_class`` is the most frequent training class)."""
    counts = np.asarray(gt_counts, dtype=np.int64).reshape(-1)
    cm = np.zeros((counts.size, counts.size), dtype=np.int64)
    cm[:, predicted_class] = counts
    return SegmentationMetrics.from_confusion(cm, class_names)
