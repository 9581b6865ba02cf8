"""Write the ScanNet split files the fine-tuning recipes read (``configs/finetune/scannet*.yaml``).

``write_splits(lists, out, seed, clouds)`` copies the official ``scannetv2_{train,val[,test]}.txt``
and writes, with the seeded scheme of :mod:`pixvox.prep.scannet.benchmark`:

- ``train_{1,5,10,20}pct.txt``: the scene fractions (the same scenes ``data.subset.scene_fraction`` picks
  at run time with the same seed and training list);
- ``limited_points.json`` (with ``clouds``): 200 ordered labeled points per training scene, whose first
  k are the k-point subset (the points ``data.subset.points_per_scene: k`` picks at run time);
- ``splits.json``: counts and the seed, written last.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from pixvox.io.atomic import atomic_write_json, atomic_write_text
from pixvox.io.clouds import CloudIndex
from pixvox.prep.scannet.benchmark import (
    SCENE_FRACTIONS,
    limited_points_document,
    point_order,
    read_scene_list,
    select_scenes,
)

log = logging.getLogger("pixvox.prep.scannet")


def _write_list(path: Path, scenes: list[str]) -> None:
    atomic_write_text(path, "".join(s + "\n" for s in scenes))


def write_splits(
    split_dir: str | Path, out: str | Path, seed: int, clouds: str | Path | None = None
) -> dict[str, Any]:
    """Copy the official lists and write the data-efficient subsets to ``out``; returns the summary."""
    split_dir, out = Path(split_dir), Path(out)
    lists = {name: read_scene_list(split_dir / f"scannetv2_{name}.txt") for name in ("train", "val")}
    if (split_dir / "scannetv2_test.txt").is_file():
        lists["test"] = read_scene_list(split_dir / "scannetv2_test.txt")
    for name, scenes in lists.items():
        _write_list(out / f"scannetv2_{name}.txt", scenes)
    train = list(dict.fromkeys(lists["train"]))
    summary: dict[str, Any] = {name: len(s) for name, s in lists.items()}
    summary["fractions"] = {}
    for f in SCENE_FRACTIONS:
        chosen = sorted(select_scenes(train, f, seed))
        _write_list(out / f"train_{round(f * 100)}pct.txt", chosen)
        summary["fractions"][f"{round(f * 100)}pct"] = len(chosen)
    if clouds is not None:
        index = CloudIndex.load(clouds)
        have = set(index.names())
        missing = sorted(set(train) - have)
        orders = {s: point_order(index.load_scene(s).labels, s, seed) for s in sorted(set(train) & have)}
        atomic_write_json(out / "limited_points.json", limited_points_document(orders, seed))
        summary["limited_points_scenes"] = len(orders)
        summary["limited_points_missing"] = missing
        if missing:
            log.warning("%d training scenes have no prepared cloud; no limited points for them", len(missing))
    atomic_write_json(out / "splits.json", {"seed": seed, **summary})
    return summary
