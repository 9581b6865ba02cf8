"""PLY export (read back with plyfile), the confusion PNG and the tables."""

from __future__ import annotations

import numpy as np
import pytest
from plyfile import PlyData

from pixvox.evaluation import (
    SegmentationMetrics,
    class_palette,
    comparison_table,
    metrics_table,
    plot_confusion,
    write_label_ply,
    write_metrics_json,
    write_prediction_plys,
)
from pixvox.evaluation.export import IGNORED_RGB


def test_prediction_plys_round_trip(tmp_path, seed):
    rng = np.random.default_rng(seed)
    n, c = 500, 7
    xyz = rng.normal(size=(n, 3)).astype(np.float32)
    gt = rng.integers(-1, c, n)
    pred = rng.integers(0, c, n)
    pred_path, gt_path = write_prediction_plys(tmp_path, "room", xyz, pred, gt, c)
    palette = class_palette(c)
    for path, colored_by in ((pred_path, pred), (gt_path, gt)):
        v = PlyData.read(str(path))["vertex"]
        np.testing.assert_array_equal(np.stack([v["x"], v["y"], v["z"]], 1), xyz)
        np.testing.assert_array_equal(v["pred"], pred)
        np.testing.assert_array_equal(v["gt"], gt)
        rgb = np.stack([v["red"], v["green"], v["blue"]], 1)
        ok = colored_by >= 0
        np.testing.assert_array_equal(rgb[ok], palette[colored_by[ok]])
        assert (rgb[~ok] == IGNORED_RGB).all()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["room.gt.ply", "room.pred.ply"]  # no temp files


def test_palette_colors_are_distinct():
    for c in (13, 20, 41):
        assert len({tuple(x) for x in class_palette(c)}) == c


def test_ply_rejects_mismatched_inputs(tmp_path):
    with pytest.raises(ValueError, match="need xyz"):
        write_label_ply(tmp_path / "x.ply", np.zeros((3, 3)), np.zeros(4, int))
    assert not list(tmp_path.iterdir())


def _metrics() -> SegmentationMetrics:
    target = np.array([0, 0, 1, 1, 1, 2])
    pred = np.array([0, 1, 1, 1, 0, 2])
    return SegmentationMetrics.from_predictions(pred, target, ["wall", "floor", "chair", "lamp"])


def test_confusion_png_and_metrics_json(tmp_path):
    m = _metrics()
    png = plot_confusion(m, tmp_path / "eval" / "confusion.png", title="t")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 2000
    import json

    doc = json.loads(write_metrics_json(tmp_path / "m.json", m, init="scratch").read_text())
    assert doc["init"] == "scratch" and doc["confusion"] == m.confusion.tolist()
    assert doc["per_class"]["lamp"]["iou"] is None and doc["per_class"]["chair"]["iou"] == 1.0


def test_tables_show_every_class_and_the_means():
    m = _metrics()
    text = metrics_table(m)
    assert "n/a" in text.splitlines()[5]  # lamp: absent from the ground truth
    assert f"{100 * m.miou:.1f}" in text
    side = comparison_table({"scratch": m, "pretrained": m})
    assert "scratch" in side.splitlines()[0] and "pretrained" in side.splitlines()[0]
    assert len(side.splitlines()) == 2 + 3 + 1 + 4
