"""Semantic-segmentation datasets over labeled point clouds (S3DIS rooms, ScanNet scenes, synthetic rooms).

A scene is read from the labeled-cloud format (docs/architecture.md), optionally reduced to a label
budget (data-efficient training), augmented (crop, rotation/tilt/scale/flip/translation, elastic
distortion, chromatic auto-contrast/translation/jitter), then voxelized. Each item keeps the map from
every point to its voxel, so predictions and metrics are computed on the original points.

Also here: splits (glob patterns or list files), the data-efficient subsets of the CSC ScanNet
benchmark (a fraction of the scenes; N labeled points per scene), and a reader of the
mmdetection3d-style ScanNet ``.npy`` scans in ``../shared/data`` (NYU40 → ScanNet-20 labels).
"""

from __future__ import annotations

import fnmatch
import json
import logging
import math
import zlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from pixvox.config.finetune import (
    ColorAugmentConfig,
    LabelSubsetConfig,
    SceneSplitConfig,
    SegAugment3DConfig,
    SegDataConfig,
)
from pixvox.datasets.augment import AXES, elastic_distortion, random_similarity
from pixvox.geometry import voxelize
from pixvox.io.clouds import CloudFormatError, CloudIndex, LabeledCloud

log = logging.getLogger("pixvox")

#: Label of points that are not used (unannotated, outside the benchmark classes, or outside the budget).
IGNORE = -1

SCANNET20_CLASS_NAMES = [
    "wall", "floor", "cabinet", "bed", "chair", "sofa", "table", "door", "window", "bookshelf",
    "picture", "counter", "desk", "curtain", "refrigerator", "shower curtain", "toilet", "sink",
    "bathtub", "otherfurniture",
]  # fmt: skip
#: NYU40 ids of the ScanNet-20 classes, in class order (the ScanNet benchmark's VALID_CLASS_IDS).
SCANNET20_NYU40_IDS = (1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 14, 16, 24, 28, 33, 34, 36, 39)


# ----------------------------------------------------------------------------------------- ScanNet .npy


def nyu40_to_scannet20(nyu40: np.ndarray) -> np.ndarray:
    """NYU40 ids (0 = unannotated) → ScanNet-20 class ids 0..19, -1 for every other id. int32 ``[N]``."""
    lut = np.full(max(41, int(nyu40.max(initial=0)) + 1), IGNORE, np.int32)
    lut[list(SCANNET20_NYU40_IDS)] = np.arange(len(SCANNET20_NYU40_IDS), dtype=np.int32)
    return lut[nyu40.astype(np.int64)]


def read_scannet_npy(folder: str | Path, scene: str) -> LabeledCloud:
    """Read ``<scene>_vert_all.npy`` (float32 ``[N, 6]`` xyz metres + rgb 0-255) and
    ``<scene>_sem_label_all.npy`` (NYU40 ids ``[N]``) into a cloud with ScanNet-20 labels."""
    folder = Path(folder)
    vpath, lpath = folder / f"{scene}_vert_all.npy", folder / f"{scene}_sem_label_all.npy"
    try:
        verts = np.load(vpath, allow_pickle=False)
        nyu = np.load(lpath, allow_pickle=False)
    except FileNotFoundError as err:
        raise CloudFormatError(
            f"{err.filename}: not found (expected mmdetection3d-style ScanNet .npy files)"
        ) from err
    except (ValueError, OSError, EOFError) as err:
        raise CloudFormatError(f"{vpath} / {lpath}: unreadable .npy ({err}); fetch the files again") from err
    if verts.ndim != 2 or verts.shape[1] < 6:
        raise CloudFormatError(f"{vpath}: expected [N, 6] (x, y, z, r, g, b), got {verts.shape}")
    if nyu.shape != (verts.shape[0],):
        raise CloudFormatError(
            f"{lpath}: expected {verts.shape[0]} labels (one per vertex of {vpath.name}), "
            f"got shape {nyu.shape}"
        )
    if nyu.dtype.kind not in "iu":
        raise CloudFormatError(f"{lpath}: labels must be integers, got {nyu.dtype}")
    xyz = np.ascontiguousarray(verts[:, :3], dtype=np.float32)
    if not np.isfinite(xyz).all():
        raise CloudFormatError(f"{vpath}: NaN or inf coordinates")
    rgb = np.clip(np.round(verts[:, 3:6]), 0, 255).astype(np.uint8)
    return LabeledCloud(xyz=xyz, rgb=rgb, labels=nyu40_to_scannet20(nyu))


def convert_scannet_npy(
    folder: str | Path, out_root: str | Path, scenes: Sequence[str] | None = None
) -> CloudIndex:
    """Write the ScanNet ``.npy`` scans of ``folder`` (all ``*_vert_all.npy``, or ``scenes``) as labeled
    clouds with ScanNet-20 labels under ``out_root`` (index.json written last). Returns the index."""
    folder = Path(folder)
    if scenes is None:
        scenes = sorted(p.name[: -len("_vert_all.npy")] for p in folder.glob("*_vert_all.npy"))
    if not scenes:
        raise CloudFormatError(f"{folder}: no <scene>_vert_all.npy files to convert")
    index = CloudIndex.open_or_create(out_root, SCANNET20_CLASS_NAMES)
    index.extra.setdefault("source", f"scannet npy: {folder}")
    for scene in scenes:
        index.add(scene, read_scannet_npy(folder, scene))
    index.write()
    return index


# ----------------------------------------------------------------------------------------- splits


def resolve_split(index: CloudIndex, split: SceneSplitConfig, what: str = "split") -> list[str]:
    """Scene names of ``index`` selected by ``split`` (in index order); unknown listed names raise."""
    names = index.names()
    if split.list_file:
        path = Path(split.list_file)
        if not path.is_absolute() and not path.is_file():
            path = index.root / path
        if not path.is_file():
            raise FileNotFoundError(
                f"{what}: list file {split.list_file} not found (also looked in {index.root})"
            )
        lines = [line.strip() for line in path.read_text().splitlines()]
        wanted = [line for line in lines if line and not line.startswith("#")]
        missing = sorted(set(wanted) - set(names))
        if missing:
            raise CloudFormatError(
                f"{path}: {len(missing)} scenes are not in {index.root / 'index.json'} (e.g. {missing[:3]}); "
                "prepare them or fix the list"
            )
        chosen = set(wanted)
        return [n for n in names if n in chosen]
    return [
        n for n in names
        if any(fnmatch.fnmatchcase(n, p) for p in split.include)
        and not any(fnmatch.fnmatchcase(n, p) for p in split.exclude)
    ]  # fmt: skip


def select_scenes(names: Sequence[str], fraction: float, seed: int) -> list[str]:
    """A random ``fraction`` of ``names`` (at least one scene; CSC's "limited scene reconstructions"),
    fixed by ``seed``, kept in the input order."""
    if fraction >= 1.0 or not names:
        return list(names)
    k = max(1, round(fraction * len(names)))
    pick = np.random.default_rng([seed, 0x5CE7E]).choice(len(names), size=k, replace=False)
    return [names[i] for i in sorted(pick.tolist())]


def scene_stream(seed: int, name: str) -> np.random.Generator:
    """Random stream of one scene for the label selection, independent of the other scenes."""
    return np.random.default_rng([seed, zlib.crc32(name.encode())])


def apply_point_budget(
    labels: np.ndarray, budget: int, rng: np.random.Generator | None, fixed: Sequence[int] | None = None
) -> np.ndarray:
    """Keep the labels of ``budget`` randomly chosen labeled points (or of the ``fixed`` indices); every
    other point becomes ``IGNORE``. Fewer labeled points than the budget keeps all of them."""
    out = np.full_like(labels, IGNORE)
    if fixed is not None:
        idx = np.asarray(fixed, dtype=np.int64)
        if idx.size and (idx.min() < 0 or idx.max() >= labels.shape[0]):
            n = labels.shape[0]
            raise IndexError(f"labeled point indices span [{idx.min()}, {idx.max()}]; the scene has {n}")
    else:
        labeled = np.flatnonzero(labels != IGNORE)
        if labeled.size <= budget:
            idx = labeled
        elif rng is None:
            raise ValueError("a random generator is needed to choose the labeled points")
        else:
            idx = rng.choice(labeled, size=budget, replace=False)
    out[idx] = labels[idx]
    return out


def load_points_file(path: str | Path) -> dict[str, list[int]]:
    """``{"scene": [point indices]}`` JSON of a fixed labeled-point selection."""
    path = Path(path)
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError as err:
        raise FileNotFoundError(f"data.subset.points_file {path} not found") from err
    except json.JSONDecodeError as err:
        raise ValueError(f"{path}: not valid JSON ({err})") from err
    if not isinstance(data, dict) or not all(isinstance(v, list) for v in data.values()):
        raise ValueError(f"{path}: expected a JSON object mapping scene names to lists of point indices")
    return {str(k): [int(i) for i in v] for k, v in data.items()}


# ----------------------------------------------------------------------------------------- augmentation


def _axis_rotation(axis: int, angle: float) -> np.ndarray:
    c, s = math.cos(angle), math.sin(angle)
    i, j = [k for k in range(3) if k != axis]
    R = np.eye(3)
    R[i, i], R[i, j], R[j, i], R[j, j] = c, -s, s, c
    return R


def random_point_transform(rng: np.random.Generator, cfg: SegAugment3DConfig) -> np.ndarray:
    """4×4 float64: small tilts about the horizontal axes, then rotation about the up axis, scale,
    mirror, translation (metres)."""
    T = random_similarity(rng, cfg.up_axis, cfg.rotate_gravity, cfg.scale, False, cfg.translate)
    tilt = np.eye(4)
    if cfg.tilt > 0:
        for axis in (k for k in range(3) if k != AXES[cfg.up_axis]):
            tilt[:3, :3] = _axis_rotation(axis, rng.uniform(-cfg.tilt, cfg.tilt)) @ tilt[:3, :3]
    T = T @ tilt
    if cfg.flip:
        for axis in (k for k in range(3) if k != AXES[cfg.up_axis]):
            if rng.random() < 0.5:
                T[axis, :] *= -1
    return T


def horizontal_crop(
    xyz: np.ndarray, labels: np.ndarray, size: float, up_axis: str, rng: np.random.Generator
) -> np.ndarray:
    """Indices of the points in a horizontal ``size``×``size`` m square centred on a random labeled
    point (any point when none is labeled); the square spans the full height."""
    labeled = np.flatnonzero(labels != IGNORE)
    centre = xyz[rng.choice(labeled) if labeled.size else rng.integers(xyz.shape[0])]
    h = [k for k in range(3) if k != AXES[up_axis]]
    inside = (np.abs(xyz[:, h] - centre[h]) <= size / 2).all(1)
    return np.flatnonzero(inside)


def chromatic_augment(rgb: np.ndarray, rng: np.random.Generator, cfg: ColorAugmentConfig) -> np.ndarray:
    """Auto-contrast (blended), global translation and per-voxel jitter of ``[V, 3]`` colors on the
    0-255 scale (float64, clipped to [0, 255])."""
    rgb = rgb.astype(np.float64, copy=True)
    if rgb.shape[0] and rng.random() < cfg.auto_contrast:
        lo, hi = rgb.min(0, keepdims=True), rgb.max(0, keepdims=True)
        stretched = (rgb - lo) * (255.0 / np.maximum(hi - lo, 1e-6))
        blend = rng.random()
        rgb = (1 - blend) * rgb + blend * stretched
    if cfg.translation > 0 and rng.random() < 0.95:
        rgb = rgb + (rng.random((1, 3)) - 0.5) * 2 * 255 * cfg.translation
    if cfg.jitter_std > 0 and rng.random() < 0.95:
        rgb = rgb + rng.standard_normal(rgb.shape) * cfg.jitter_std * 255
    return np.clip(rgb, 0, 255)


# ----------------------------------------------------------------------------------------- voxels


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
    """

    def __init__(
        self,
        index: CloudIndex,
        scenes: Sequence[str],
        cfg: SegDataConfig,
        *,
        train: bool,
        input_kind: str = "color",
        repeat: int = 1,
    ) -> None:
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
        self.fixed_points = load_points_file(sub.points_file) if (train and sub.points_file) else {}

    @property
    def num_classes(self) -> int:
        return self.index.num_classes

    @property
    def class_names(self) -> list[str]:
        return list(self.index.class_names)

    def __len__(self) -> int:
        return len(self.scenes) * self.repeat

    def scene_name(self, i: int) -> str:
        return self.scenes[i % len(self.scenes)]

    def load_labels(self, name: str) -> np.ndarray:
        """The labels training sees for scene ``name``: int64 ``[N]`` after the label budget."""
        return self._labels(name, self.index.load_scene(self._positions[name]))

    def _labels(self, name: str, cloud: LabeledCloud) -> np.ndarray:
        labels = cloud.labels.astype(np.int64)
        if self.index.ignore_index != IGNORE:
            labels[labels == self.index.ignore_index] = IGNORE
        if name in self.fixed_points:
            return apply_point_budget(labels, 0, None, self.fixed_points[name])
        if self.budget:
            return apply_point_budget(labels, self.budget, scene_stream(self.cfg.subset.seed, name))
        return labels

    def __getitem__(self, key: tuple[int, int] | int) -> dict[str, Any]:
        i, seed = key if isinstance(key, tuple) else (key, 0)
        name = self.scene_name(i)
        cloud = self.index.load_scene(self._positions[name])
        if cloud.num_points == 0:
            raise CloudFormatError(
                f"{self.index.path(self._positions[name])}: scene {name} has no points; "
                "remove it from the split"
            )
        labels = self._labels(name, cloud)
        xyz = cloud.xyz.astype(np.float64)
        if self.cfg.world_rotation is not None:
            xyz = xyz @ np.asarray(self.cfg.world_rotation, dtype=np.float64).T
        rgb = cloud.rgb
        keep = np.arange(xyz.shape[0])
        rng = np.random.default_rng(seed) if self.train else None
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
