"""Predictions as colored PLY point clouds (viewable in MeshLab / CloudCompare), written atomically.

Each file holds one vertex per original point with ``x, y, z`` (float32, metres), ``red, green, blue``
(uint8, the color of the class shown) and the scalar fields ``pred`` and ``gt`` (int32 class ids,
``gt`` = -1 where the point is unlabeled), which CloudCompare lists as scalar fields.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from pixvox.io.atomic import atomic_open

IGNORED_RGB = (160, 160, 160)  #: color of unlabeled points in ground-truth files


def class_palette(num_classes: int) -> np.ndarray:
    """``[C, 3]`` uint8 distinct colors: matplotlib's tab20 order, then evenly spaced hues beyond 20."""
    import matplotlib

    base = (np.asarray(matplotlib.colormaps["tab20"].colors) * 255).round().astype(np.uint8)
    # Strong colors first (even entries of tab20), their light variants after.
    order = np.concatenate([base[0::2], base[1::2]])
    if num_classes <= len(order):
        return order[:num_classes].copy()
    import colorsys

    hues = np.linspace(0, 1, num_classes - len(order), endpoint=False)
    extra = [colorsys.hsv_to_rgb(h, 0.8, 0.9) for h in hues]
    return np.concatenate([order, (np.asarray(extra) * 255).round().astype(np.uint8)])


def colorize(labels: np.ndarray, palette: np.ndarray, ignore_index: int = -1) -> np.ndarray:
    """``[N]`` class ids → ``[N, 3]`` uint8 colors (``IGNORED_RGB`` for ``ignore_index``)."""
    labels = np.asarray(labels).astype(np.int64)
    rgb = np.empty((labels.shape[0], 3), dtype=np.uint8)
    rgb[:] = IGNORED_RGB
    ok = labels != ignore_index
    if ok.any() and (labels[ok].min() < 0 or labels[ok].max() >= len(palette)):
        raise ValueError(
            f"labels span [{labels[ok].min()}, {labels[ok].max()}], the palette has {len(palette)} classes"
        )
    rgb[ok] = palette[labels[ok]]
    return rgb


def write_label_ply(
    path: str | Path,
    xyz: np.ndarray,
    pred: np.ndarray,
    gt: np.ndarray | None = None,
    color_by: str = "pred",
    palette: np.ndarray | None = None,
    ignore_index: int = -1,
) -> Path:
    """Write ``xyz`` ``[N, 3]`` (metres) colored by ``pred`` (``color_by="pred"``) or ``gt`` as a binary PLY.

    ``pred`` and ``gt`` are ``[N]`` class ids; ``gt`` may hold ``ignore_index``.
    """
    from plyfile import PlyData, PlyElement

    xyz = np.asarray(xyz, dtype=np.float32)
    n = xyz.shape[0]
    pred = np.asarray(pred).astype(np.int32).reshape(-1)
    gt_arr = np.full(n, ignore_index, np.int32) if gt is None else np.asarray(gt).astype(np.int32).reshape(-1)
    if xyz.ndim != 2 or xyz.shape[1] != 3 or pred.shape[0] != n or gt_arr.shape[0] != n:
        raise ValueError(f"need xyz [N, 3], pred [N], gt [N]; got {xyz.shape}, {pred.shape}, {gt_arr.shape}")
    if color_by not in ("pred", "gt"):
        raise ValueError(f"color_by must be 'pred' or 'gt', got {color_by!r}")
    if palette is None:
        top = max(int(pred.max(initial=0)), int(gt_arr.max(initial=0)))
        palette = class_palette(top + 1)
    rgb = colorize(pred if color_by == "pred" else gt_arr, palette, ignore_index)
    vertex = np.empty(
        n,
        dtype=[
            ("x", "f4"),
            ("y", "f4"),
            ("z", "f4"),
            ("red", "u1"),
            ("green", "u1"),
            ("blue", "u1"),
            ("pred", "i4"),
            ("gt", "i4"),
        ],
    )
    vertex["x"], vertex["y"], vertex["z"] = xyz[:, 0], xyz[:, 1], xyz[:, 2]
    vertex["red"], vertex["green"], vertex["blue"] = rgb[:, 0], rgb[:, 1], rgb[:, 2]
    vertex["pred"], vertex["gt"] = pred, gt_arr
    path = Path(path)
    with atomic_open(path, "wb") as f:
        PlyData([PlyElement.describe(vertex, "vertex")], text=False).write(f)
    return path


def write_prediction_plys(
    folder: str | Path,
    scene: str,
    xyz: np.ndarray,
    pred: np.ndarray,
    gt: np.ndarray,
    num_classes: int,
    ignore_index: int = -1,
) -> list[Path]:
    """``<folder>/<scene>.pred.ply`` (colored by prediction) and ``<scene>.gt.ply`` (by ground truth),
    with one palette so the two can be compared side by side."""
    palette = class_palette(num_classes)
    folder = Path(folder)
    return [
        write_label_ply(folder / f"{scene}.{which}.ply", xyz, pred, gt, which, palette, ignore_index)
        for which in ("pred", "gt")
    ]


def legend(class_names: list[str]) -> list[dict]:
    """Class name → RGB of :func:`class_palette`, for a legend file next to the PLYs."""
    palette = class_palette(len(class_names))
    return [{"id": i, "name": n, "rgb": [int(v) for v in palette[i]]} for i, n in enumerate(class_names)]
