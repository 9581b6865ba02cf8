"""Segmentation metrics against hand-computed values and a brute-force float64 reference."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from pixvox.evaluation import SegmentationMetrics, confusion_matrix, constant_prediction_metrics

NAMES4 = ["a", "b", "c", "d"]


def test_hand_computed_example_with_ignore_and_absent_classes():
    # classes: 0 and 1 present; 2 absent and never predicted; 3 absent but predicted once.
    target = np.array([0, 0, 0, 1, 1, 1, -1, -1])
    pred = np.array([0, 0, 1, 1, 1, 3, 2, 0])  # the two ignored points must not count
    m = SegmentationMetrics.from_predictions(pred, target, NAMES4)
    assert m.confusion.tolist() == [[2, 1, 0, 0], [0, 2, 0, 1], [0, 0, 0, 0], [0, 0, 0, 0]]
    assert m.num_points == 6
    assert m.iou[0] == pytest.approx(2 / 3)  # TP 2, FN 1, FP 0
    assert m.iou[1] == pytest.approx(2 / 4)  # TP 2, FN 1 (predicted d), FP 1 (an a)
    assert math.isnan(m.iou[2]) and math.isnan(m.iou[3])  # absent from the ground truth: n/a
    assert m.acc[0] == pytest.approx(2 / 3) and m.acc[1] == pytest.approx(2 / 3)
    assert m.miou == pytest.approx((2 / 3 + 1 / 2) / 2)
    assert m.macc == pytest.approx(2 / 3)
    assert m.oa == pytest.approx(4 / 6)


def test_all_points_ignored_gives_nan_means_not_errors():
    m = SegmentationMetrics.from_predictions(np.array([0, 1]), np.array([-1, -1]), ["a", "b"])
    assert m.num_points == 0 and math.isnan(m.miou) and math.isnan(m.oa)
    doc = m.to_json()
    json.dumps(doc, allow_nan=False)  # NaN written as null
    assert doc["miou"] is None and doc["per_class"]["a"]["iou"] is None


def brute_force(pred: np.ndarray, target: np.ndarray, c: int, ignore: int):
    iou, acc = [], []
    pts = [(int(p), int(t)) for p, t in zip(pred, target) if t != ignore]
    for k in range(c):
        tp = sum(1 for p, t in pts if p == k and t == k)
        fp = sum(1 for p, t in pts if p == k and t != k)
        fn = sum(1 for p, t in pts if p != k and t == k)
        present = tp + fn > 0
        iou.append(tp / (tp + fp + fn) if present else float("nan"))
        acc.append(tp / (tp + fn) if present else float("nan"))
    good = [i for i in range(c) if not math.isnan(iou[i])]
    oa = sum(1 for p, t in pts if p == t) / len(pts)
    return iou, acc, sum(iou[i] for i in good) / len(good), sum(acc[i] for i in good) / len(good), oa


@pytest.mark.parametrize("ignore", [-1, 255])
def test_random_predictions_match_brute_force(seed, ignore):
    rng = np.random.default_rng(seed)
    c = int(rng.integers(3, 9))
    n = int(rng.integers(50, 400))
    target = rng.integers(0, c - 1, n)  # class c-1 never in the ground truth
    target[rng.random(n) < 0.2] = ignore
    pred = np.where(rng.random(n) < 0.6, np.clip(target, 0, c - 1), rng.integers(0, c, n))
    names = [f"k{i}" for i in range(c)]
    m = SegmentationMetrics.from_predictions(torch.from_numpy(pred), torch.from_numpy(target), names, ignore)
    iou, acc, miou, macc, oa = brute_force(pred, target, c, ignore)
    np.testing.assert_allclose(m.iou, iou, equal_nan=True)
    np.testing.assert_allclose(m.acc, acc, equal_nan=True)
    assert m.miou == pytest.approx(miou) and m.macc == pytest.approx(macc) and m.oa == pytest.approx(oa)
    assert math.isnan(m.iou[c - 1])


def test_constant_prediction_is_the_majority_baseline(seed):
    rng = np.random.default_rng(seed)
    target = rng.integers(0, 5, 300)
    counts = np.bincount(target, minlength=5)
    k = int(counts.argmax())
    a = constant_prediction_metrics(counts, k, list("abcde"))
    b = SegmentationMetrics.from_predictions(np.full(300, k), target, list("abcde"))
    np.testing.assert_array_equal(a.confusion, b.confusion)
    assert a.miou == pytest.approx(counts[k] / 300 / 5)  # IoU of k = its share; others 0


def test_bad_inputs_raise_clear_errors():
    with pytest.raises(TypeError, match="integer"):
        confusion_matrix(np.array([0.0, 1.0]), np.array([0, 1]), 2)
    with pytest.raises(ValueError, match="predicted ids"):
        confusion_matrix(np.array([0, 2]), np.array([0, 1]), 2)
    with pytest.raises(ValueError, match="target ids"):
        confusion_matrix(np.array([0, 1]), np.array([0, 5]), 2)
    with pytest.raises(ValueError, match="same number"):
        confusion_matrix(np.array([0, 1, 1]), np.array([0, 1]), 2)
    with pytest.raises(ValueError, match="class names"):
        SegmentationMetrics.from_confusion(np.zeros((3, 3), np.int64), ["a", "b"])
