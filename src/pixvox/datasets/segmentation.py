"""Semantic-segmentation dataset over labeled scenes (S3DIS rooms, ScanNet scenes, synthetic rooms).

A scene is read from the labeled-cloud format (docs/architecture.md) or Pointcept's layout, optionally
reduced to a label budget (data-efficient training, :mod:`pixvox.prep.scannet.benchmark`), augmented
(crop, rotation/tilt/scale/flip/translation, elastic distortion, chromatic auto-contrast/translation/
jitter; :mod:`pixvox.datasets.augment`), then voxelized (:func:`pixvox.geometry.voxelize`). Each item
keeps the map from every point to its voxel, so predictions and metrics are computed on the original
points.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from pixvox.config.finetune import LabelSubsetConfig, SegDataConfig
from pixvox.datasets.augment import (
    chromatic_augment,
    elastic_distortion,
    horizontal_crop,
    random_point_transform,
)
from pixvox.datasets.skipped import SkippedSample
from pixvox.geometry import voxelize
from pixvox.io.clouds import CloudFormatError, LabeledCloud, LabeledScenes
from pixvox.prep.scannet.benchmark import apply_point_subset, load_points_file, point_order

log = logging.getLogger("pixvox")

#: Label of points that are not used (unannotated, outside the benchmark classes, or outside the budget).
IGNORE = -1


def voxel_majority_labels(labels: np.ndarray, inverse: np.ndarray, num_voxels: int) -> np.ndarray:
    """Per voxel, the most frequent label among its labeled points (ties → smallest id), ``IGNORE``
    for voxels without labeled points. int64 ``[V]``."""
    out = np.full(num_voxels, IGNORE, np.int64)
    keep = labels != IGNORE
    if not keep.any():
        return out
    lab = labels[keep].astype(np.int64)
    num_classes = int(lab.max()) + 1
    keys, counts = np.unique(inverse[keep] * num_classes + lab, return_counts=True)
    vox, cls = keys // num_classes, keys % num_classes
    order = np.lexsort((cls, -counts, vox))
    vox_sorted = vox[order]
    first = order[np.concatenate([[True], vox_sorted[1:] != vox_sorted[:-1]])]
    out[vox[first]] = cls[first]
    return out


# ----------------------------------------------------------------------------------------- dataset


class SegmentationDataset(torch.utils.data.Dataset):
    """Voxelized labeled scenes for training (``train=True``: label budget, crop, augmentation) or
    evaluation (all labels, no augmentation).

    Indexed by ``(i, seed)`` pairs (:class:`pixvox.engine.sampler.ResumableBatchSampler`) or plain ints;
    ``i`` runs over ``len(scenes) * repeat``. Each item is a dict:
      ``name``, ``seed``; ``coords`` int32 [V, 3]; ``feats`` float32 [V, Cin] (mean RGB in [-0.5, 0.5],
      or ones); ``labels`` int64 [V] (majority label of the voxel's labeled points, -1 = none);
      ``inverse`` int64 [N] voxel of every kept point; ``point_labels`` int64 [N] (-1 = ignored);
      ``point_index`` int64 [N] index of every kept point in the stored cloud.

    With ``skip_unreadable`` (the training set) a scene that fails to read or validate, or has no
    points, comes back as a :class:`SkippedSample` instead of raising ``CloudFormatError``.
    """

    def __init__(
        self,
        index: LabeledScenes,
        scenes: Sequence[str],
        cfg: SegDataConfig,
        *,
        train: bool,
        input_kind: str = "color",
        repeat: int = 1,
        skip_unreadable: bool = False,
    ) -> None:
        self.skip_unreadable = skip_unreadable
        if not scenes:
            raise ValueError(
                f"{index.root}: no scenes selected for {'training' if train else 'evaluation'}; "
                "check data.train / data.val (include, exclude, list_file)"
            )
        if input_kind not in ("color", "ones"):
            raise ValueError(f"input_kind must be 'color' or 'ones', got {input_kind!r}")
        self.index, self.scenes, self.cfg = index, list(scenes), cfg
        self.train, self.input_kind, self.repeat = train, input_kind, repeat
        self._positions = {n: index.position(n) for n in self.scenes}
        sub: LabelSubsetConfig = cfg.subset
        self.budget = sub.points_per_scene if train else 0
        self.points = None
        if train and sub.points_file:
            path = Path(sub.points_file)
            if not path.is_absolute() and not path.is_file():
                path = index.root / path  # relative to data.root, like the split list files
            self.points = load_points_file(path)

    @property
    def num_classes(self) -> int:
        return self.index.num_classes

    @property
    def class_names(self) -> list[str]:
        return list(self.index.class_names)

    def __len__(self) -> int:
        return len(self.scenes) * self.repeat

    @property
    def num_files(self) -> int:
        """Distinct scenes this dataset reads (``data.max_skipped_fraction`` counts against these)."""
        return len(set(self.scenes))

    def scene_name(self, i: int) -> str:
        return self.scenes[i % len(self.scenes)]

    def load_labels(self, name: str) -> np.ndarray:
        """The labels training sees for scene ``name``: int64 ``[N]`` after the label budget."""
        return self._labels(name, self.index.load_scene(self._positions[name]))

    def _labels(self, name: str, cloud: LabeledCloud) -> np.ndarray:
        labels = cloud.labels.astype(np.int64)
        if self.index.ignore_index != IGNORE:
            labels[labels == self.index.ignore_index] = IGNORE
        chosen = self.points.indices(name, self.budget) if self.points is not None else None
        if chosen is None and self.budget:
            chosen = point_order(labels, name, self.cfg.subset.seed)[: self.budget]
        return labels if chosen is None else apply_point_subset(labels, chosen, name)

    def _load(self, name: str) -> LabeledCloud:
        cloud = self.index.load_scene(self._positions[name])
        if cloud.num_points == 0:
            raise CloudFormatError(
                f"{self.index.path(self._positions[name])}: scene {name} has no points; "
                "remove it from the split"
            )
        return cloud

    def __getitem__(self, key: tuple[int, int] | int) -> dict[str, Any] | SkippedSample:
        i, seed = key if isinstance(key, tuple) else (key, 0)
        name = self.scene_name(i)
        try:
            cloud = self._load(name)
        except CloudFormatError as err:
            if not self.skip_unreadable:
                raise
            return SkippedSample(str(self.index.path(self._positions[name])), str(err), i)
        return self._item(name, cloud, seed, np.random.default_rng(seed) if self.train else None)

    def whole_scene(self, name: str) -> dict[str, Any]:
        """Scene ``name`` as training labels it (the label budget applied), but whole and unaugmented:
        no crop, no random transform, no color change (the items' format). Used to fit a classifier
        on frozen features before fine-tuning (``init.head=probe``)."""
        return self._item(name, self._load(name), 0, None)

    def _item(
        self, name: str, cloud: LabeledCloud, seed: int, rng: np.random.Generator | None
    ) -> dict[str, Any]:
        labels = self._labels(name, cloud)
        xyz = cloud.xyz.astype(np.float64)
        if self.cfg.world_rotation is not None:
            xyz = xyz @ np.asarray(self.cfg.world_rotation, dtype=np.float64).T
        rgb = cloud.rgb
        keep = np.arange(xyz.shape[0])
        if rng is not None:
            a = self.cfg.augment_3d
            if self.cfg.crop_size > 0:
                keep = horizontal_crop(xyz, labels, self.cfg.crop_size, a.up_axis, rng)
                xyz, rgb, labels = xyz[keep], rgb[keep], labels[keep]
            T = random_point_transform(rng, a)
            xyz = xyz @ T[:3, :3].T + T[:3, 3]
            if a.elastic and rng.random() < a.elastic_probability:
                for granularity, magnitude in a.elastic_params:
                    xyz = elastic_distortion(xyz, rng, granularity, magnitude)
        coords, inverse, colors = voxelize(xyz, self.cfg.voxel_size, rgb)
        v = coords.shape[0]
        if self.input_kind == "ones":
            feats = np.ones((v, 1), np.float32)
        else:
            if rng is not None:
                colors = chromatic_augment(colors, rng, self.cfg.color)
            feats = (colors / 255.0 - 0.5).astype(np.float32)
        return {
            "name": name,
            "seed": int(seed),
            "coords": torch.from_numpy(coords),
            "feats": torch.from_numpy(feats),
            "labels": torch.from_numpy(voxel_majority_labels(labels, inverse, v)),
            "inverse": torch.from_numpy(inverse),
            "point_labels": torch.from_numpy(labels),
            "point_index": torch.from_numpy(keep.astype(np.int64)),
        }

    def label_counts(self) -> np.ndarray:
        """int64 ``[C]`` labeled points per class over the scenes, as training sees them (budget applied)."""
        counts = np.zeros(self.num_classes, np.int64)
        for name in self.scenes:
            lab = self.load_labels(name)
            counts += np.bincount(lab[lab != IGNORE], minlength=self.num_classes)[: self.num_classes]
        return counts


def collate_segmentation(items: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Batch items: ``coords`` get a leading batch column ``[ΣV, 4]`` (MinkowskiEngine's layout),
    ``inverse`` is shifted to batch-wide voxel rows; ``voxel_offsets`` / ``point_offsets`` ``[B + 1]``
    delimit the samples."""
    if not items:
        raise ValueError("empty batch")
    v_sizes = [it["coords"].shape[0] for it in items]
    v_off = torch.tensor([0, *np.cumsum(v_sizes).tolist()], dtype=torch.long)
    p_off = torch.tensor([0, *np.cumsum([it["inverse"].shape[0] for it in items]).tolist()], dtype=torch.long)
    coords = torch.cat(
        [
            torch.cat([torch.full((c, 1), b, dtype=torch.int32), it["coords"]], 1)
            for b, (c, it) in enumerate(zip(v_sizes, items))
        ]
    )
    return {
        "names": [it["name"] for it in items],
        "seeds": [it["seed"] for it in items],
        "coords": coords,
        "feats": torch.cat([it["feats"] for it in items]),
        "labels": torch.cat([it["labels"] for it in items]),
        "inverse": torch.cat([it["inverse"] + v_off[b] for b, it in enumerate(items)]),
        "point_labels": torch.cat([it["point_labels"] for it in items]),
        "point_index": torch.cat([it["point_index"] for it in items]),
        "voxel_offsets": v_off,
        "point_offsets": p_off,
    }


def class_weights(counts: np.ndarray, kind: str | Sequence[float]) -> torch.Tensor | None:
    """Cross-entropy class weights from labeled-point counts ``[C]``: ``inverse_sqrt`` (1/√f) or
    ``inverse_log`` (1/ln(1.02 + f)) of the class frequency f, normalized to mean 1 over the classes
    present (absent classes get 0: they have no samples); an explicit list is used as given."""
    if isinstance(kind, str) and kind == "none":
        return None
    c = counts.shape[0]
    if not isinstance(kind, str):
        if len(kind) != c:
            raise ValueError(f"loss.class_weights has {len(kind)} values, the dataset has {c} classes")
        return torch.tensor(list(kind), dtype=torch.float32)
    freq = counts / max(int(counts.sum()), 1)
    present = counts > 0
    w = np.zeros(c)
    if kind == "inverse_sqrt":
        w[present] = 1.0 / np.sqrt(freq[present])
    elif kind == "inverse_log":
        w[present] = 1.0 / np.log(1.02 + freq[present])
    else:
        raise ValueError(f"unknown loss.class_weights {kind!r}")
    if present.any():
        w[present] /= w[present].mean()
    return torch.tensor(w, dtype=torch.float32)
