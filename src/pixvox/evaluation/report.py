"""Metric tables for the console and metric files (JSON, written atomically)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path

from pixvox.evaluation.metrics import SegmentationMetrics
from pixvox.io.atomic import atomic_write_json


def _pct(x: float | None) -> str:
    return "n/a" if x is None or not math.isfinite(x) else f"{100 * x:.1f}"


def metrics_table(m: SegmentationMetrics, title: str = "") -> str:
    """Per-class IoU / accuracy (percent) with ground-truth point counts, then mIoU, mAcc and OA."""
    width = max(12, *(len(n) for n in m.class_names))
    gt = m.confusion.sum(1)
    lines = [title] if title else []
    lines.append(f"{'class':<{width}}  {'IoU':>6}  {'Acc':>6}  {'points':>9}")
    lines.append("-" * (width + 27))
    for i, name in enumerate(m.class_names):
        lines.append(f"{name:<{width}}  {_pct(m.iou[i]):>6}  {_pct(m.acc[i]):>6}  {int(gt[i]):>9d}")
    lines.append("-" * (width + 27))
    lines.append(f"{'mIoU':<{width}}  {_pct(m.miou):>6}")
    lines.append(f"{'mAcc':<{width}}  {_pct(m.macc):>6}")
    lines.append(f"{'overall acc':<{width}}  {_pct(m.oa):>6}  {'':>6}  {m.num_points:>9d}")
    return "\n".join(lines)


def comparison_table(results: Mapping[str, SegmentationMetrics]) -> str:
    """Runs side by side: one column per run, rows mIoU, mAcc, OA and per-class IoU (percent)."""
    if not results:
        return "(no results)"
    names = list(results)
    first = next(iter(results.values()))
    classes = first.class_names
    for name, m in results.items():
        if m.class_names != classes:
            raise ValueError(f"run {name!r} has other classes than {names[0]!r}; cannot compare")
    width = max(12, *(len(c) for c in classes))
    col = max(10, *(len(n) for n in names))
    head = f"{'':<{width}}" + "".join(f"  {n:>{col}}" for n in names)
    rows = [head, "-" * len(head)]
    for label, key in (("mIoU", "miou"), ("mAcc", "macc"), ("overall acc", "oa")):
        cells = "".join(f"  {_pct(getattr(results[n], key)):>{col}}" for n in names)
        rows.append(f"{label:<{width}}{cells}")
    rows.append("-" * len(head))
    for i, c in enumerate(classes):
        rows.append(f"{c:<{width}}" + "".join(f"  {_pct(results[n].iou[i]):>{col}}" for n in names))
    return "\n".join(rows)


def write_metrics_json(path: str | Path, m: SegmentationMetrics, **extra) -> Path:
    """``m.to_json()`` plus ``extra`` keys, written atomically."""
    path = Path(path)
    atomic_write_json(path, {**m.to_json(), **extra})
    return path
