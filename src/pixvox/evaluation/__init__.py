"""Segmentation evaluation: metrics (:mod:`.metrics`), tables and JSON (:mod:`.report`), the
confusion-matrix PNG (:mod:`.confusion`), colored PLY export of predictions (:mod:`.export`) and the
converged linear probe on frozen features (:mod:`.probe`)."""

from __future__ import annotations

from pixvox.evaluation.confusion import plot_confusion
from pixvox.evaluation.export import class_palette, write_label_ply, write_prediction_plys
from pixvox.evaluation.metrics import SegmentationMetrics, confusion_matrix, constant_prediction_metrics
from pixvox.evaluation.report import comparison_table, metrics_table, write_metrics_json

__all__ = [
    "SegmentationMetrics",
    "class_palette",
    "comparison_table",
    "confusion_matrix",
    "constant_prediction_metrics",
    "metrics_table",
    "plot_confusion",
    "write_label_ply",
    "write_metrics_json",
    "write_prediction_plys",
]
