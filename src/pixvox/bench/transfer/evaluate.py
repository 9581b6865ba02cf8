"""The evaluation of one (arm, seed): frozen features of every room, the linear probe fitted on the
training rooms and scored on the test rooms, and (arms with a PPKT term) held-out retrieval.

:func:`evaluate_arm` is a module-level function of picklable arguments, so the benchmark runs it in
its worker processes beside the training runs (:mod:`.pool`) or in its own process, with the same
result: every step is seeded by the arm's config (the random student by ``experiment.seed``, the
probe's rows by the room, retrieval's pairs by the sample) and runs on the process's one thread.
"""

from __future__ import annotations

import zlib
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from pixvox.bench.transfer.features import RoomFeatures, build_arm_student, room_features
from pixvox.bench.transfer.retrieval import has_retrieval, heldout_retrieval
from pixvox.config import PretrainConfig
from pixvox.evaluation.metrics import SegmentationMetrics
from pixvox.evaluation.probe import class_counts, fit_linear_probe
from pixvox.io.clouds import CloudIndex, LabeledCloud

PROBE_ROWS_SEED = 0


def probe_rows(
    arm: str,
    seed: int,
    feats: dict[str, RoomFeatures],
    train: list[str],
    test: list[str],
    class_names: list[str],
    max_rows: int = 0,
) -> tuple[list[dict], dict]:
    """Fit the probe on ``train`` rooms (at most ``max_rows`` labeled voxels per room, 0 = all, drawn
    once per room), score every point of each ``test`` room; (rows, convergence)."""
    c = len(class_names)
    xs, cs = [], []
    for r in train:
        f = feats[r]
        counts = class_counts(f.labels, f.inverse, f.feats.shape[0], c)
        rows = np.flatnonzero(counts.sum(1) > 0)
        if max_rows and rows.size > max_rows:  # the same rows for every arm and seed (fixed by the room)
            rng = np.random.default_rng([PROBE_ROWS_SEED, zlib.crc32(r.encode())])
            rows = np.sort(rng.choice(rows, max_rows, replace=False))
        xs.append(f.feats[rows])
        cs.append(counts[rows])
    probe = fit_linear_probe(np.concatenate(xs), np.concatenate(cs))
    rows = []
    for r in test:
        f = feats[r]
        pred = probe.predict(f.feats)[f.inverse]
        m = SegmentationMetrics.from_predictions(pred, f.labels, class_names)
        rows.append({"arm": arm, "seed": seed, "test_room": r, "miou": m.miou, "oa": m.oa})
    return rows, probe.convergence


@lru_cache(maxsize=16)
def _room(rooms_root: str, name: str) -> tuple[LabeledCloud, tuple[str, ...]]:
    # a process evaluates many (arm, seed)s on the same rooms: read each once
    index = CloudIndex.load(rooms_root)
    return index.load_scene(name), tuple(index.class_names)


def evaluate_arm(
    arm: str,
    seed: int,
    cfg: PretrainConfig,
    run_dir: Path | None,
    rooms_root: Path,
    train: list[str],
    test: list[str],
    max_rows: int,
    heldout_root: Path,
) -> dict[str, Any]:
    """Probe rows, the probe's convergence and (or None) retrieval of the student of ``run_dir``
    (None: the random student of ``cfg.experiment.seed``); rooms by name in the cloud folder
    ``rooms_root``, retrieval on the fusions of ``heldout_root``."""
    student = build_arm_student(cfg, run_dir)
    feats, class_names = {}, ()
    for r in train + test:
        cloud, class_names = _room(str(rooms_root), r)
        feats[r] = room_features(student, cloud, cfg)
    rows, conv = probe_rows(arm, seed, feats, train, test, list(class_names), max_rows)
    ret = None
    if run_dir is not None and has_retrieval(cfg):
        ret = heldout_retrieval(cfg, run_dir, heldout_root)
    return {"probe": rows, "convergence": conv, "retrieval": ret}
