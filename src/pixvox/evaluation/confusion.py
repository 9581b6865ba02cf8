"""Confusion-matrix figure (PNG), written atomically."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from pixvox.evaluation.metrics import SegmentationMetrics


def plot_confusion(m: SegmentationMetrics, path: str | Path, title: str = "") -> Path:
    """Row-normalized confusion matrix (each ground-truth row sums to 1, i.e. recall on the diagonal)
    with per-class IoU in the row labels; rows of classes absent from the ground truth stay empty."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cm = m.confusion.astype(np.float64)
    rows = cm.sum(1, keepdims=True)
    norm = np.divide(cm, rows, out=np.zeros_like(cm), where=rows > 0)
    c = len(m.class_names)
    size = max(5.0, 0.42 * c + 2.5)
    fig, ax = plt.subplots(figsize=(size + 1.0, size))
    im = ax.imshow(norm, cmap="Blues", vmin=0.0, vmax=1.0)
    ticks = np.arange(c)
    ylabels = [
        f"{n} ({'n/a' if not np.isfinite(iou) else f'{100 * iou:.0f}'})"
        for n, iou in zip(m.class_names, m.iou)
    ]
    ax.set_xticks(ticks, m.class_names, rotation=60, ha="right", fontsize=8)
    ax.set_yticks(ticks, ylabels, fontsize=8)
    ax.set_xlabel("predicted")
    ax.set_ylabel("ground truth (IoU %)")
    if c <= 25:
        for i in range(c):
            for j in range(c):
                if norm[i, j] >= 0.01:
                    ax.text(
                        j,
                        i,
                        f"{100 * norm[i, j]:.0f}",
                        ha="center",
                        va="center",
                        fontsize=6,
                        color="white" if norm[i, j] > 0.5 else "black",
                    )
    miou = "n/a" if not np.isfinite(m.miou) else f"{100 * m.miou:.1f}"
    ax.set_title(f"{title + ' | ' if title else ''}mIoU {miou}%, {m.num_points} points", fontsize=10)
    fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}.png")
    try:
        fig.savefig(tmp, dpi=110)
        os.replace(tmp, path)
    finally:
        plt.close(fig)
        tmp.unlink(missing_ok=True)
    return path
