"""Labeled point clouds: the segmentation data (ScanNet, S3DIS, synthetic scenes).

Layout (see docs/data.md)::

    <root>/index.json    {"format": "pixvox.labeled_clouds", "version": 1, "class_names": [...],
                          "ignore_index": -1, "scenes": [{"name", "file", "num_points", "sha256"}]}
    <root>/<name>.npz    xyz float32 [N, 3] metres, rgb uint8 [N, 3], labels int32 [N]

Labels are benchmark class ids ``0..C-1`` (``C = len(class_names)``) or ``ignore_index`` (-1).

API for the fine-tuning dataset::

    index = CloudIndex.load(root)       # validates format, version, entries
    index.class_names; index.ignore_index; len(index); index.names()
    cloud = index.load_scene("scene0000_00")   # or index.load_scene(i): LabeledCloud, validated
    cloud = load_cloud(path, num_classes=C)    # one file

Writers: :func:`write_cloud` (atomic) and :class:`CloudIndex` ``.add(...)`` / ``.write()``.
"""

from __future__ import annotations

import os
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from pixvox.errors import UserError
from pixvox.io.atomic import atomic_save_npz, atomic_write_json, sha256_file
from pixvox.io.index_json import read_index_json

FORMAT = "pixvox.labeled_clouds"
VERSION = 1
INDEX_JSON = "index.json"
IGNORE_INDEX = -1


class CloudFormatError(UserError, ValueError):
    """A labeled cloud or its index is missing, corrupt or malformed (message names the file)."""


@dataclass
class LabeledCloud:
    """A labeled point cloud.

    ``xyz`` float32 ``[N, 3]`` metres, ``rgb`` uint8 ``[N, 3]``, ``labels`` int32 ``[N]``.
    """

    xyz: np.ndarray
    rgb: np.ndarray
    labels: np.ndarray

    @property
    def num_points(self) -> int:
        return int(self.xyz.shape[0])


def validate_cloud(cloud: LabeledCloud, source: str | os.PathLike, num_classes: int | None = None) -> None:
    """Check dtypes, shapes, finiteness and label range; raise :class:`CloudFormatError` naming ``source``."""
    for key, arr, dtype, tail in (
        ("xyz", cloud.xyz, np.float32, (3,)),
        ("rgb", cloud.rgb, np.uint8, (3,)),
        ("labels", cloud.labels, np.int32, ()),
    ):
        if arr.dtype != dtype or arr.shape[1:] != tail:
            raise CloudFormatError(
                f"{source}: '{key}' is {arr.dtype} {arr.shape}, "
                f"expected {np.dtype(dtype)} with shape (N, {', '.join(map(str, tail))})"
            )
    n = cloud.xyz.shape[0]
    if cloud.rgb.shape[0] != n or cloud.labels.shape[0] != n:
        raise CloudFormatError(
            f"{source}: xyz, rgb, labels have {n}, {cloud.rgb.shape[0]}, {cloud.labels.shape[0]} rows "
            "(they must match)"
        )
    if not np.isfinite(cloud.xyz).all():
        raise CloudFormatError(f"{source}: xyz has NaN or inf coordinates")
    if n and num_classes is not None:
        lo, hi = int(cloud.labels.min()), int(cloud.labels.max())
        if lo < IGNORE_INDEX or hi >= num_classes:
            raise CloudFormatError(
                f"{source}: labels span [{lo}, {hi}], expected -1 (ignored) or 0..{num_classes - 1}"
            )


def load_npy(path: str | os.PathLike, expected: str) -> np.ndarray:
    """One ``.npy`` array of a labeled-scene layout read in place (pickles refused). A missing file is a
    :class:`CloudFormatError` saying what was ``expected``; an unreadable one names the file too."""
    try:
        return np.load(path, allow_pickle=False)
    except FileNotFoundError as err:
        raise CloudFormatError(f"{path}: not found (expected {expected})") from err
    except (ValueError, OSError, EOFError) as err:
        raise CloudFormatError(f"{path}: unreadable .npy ({err}); fetch or regenerate the file") from err


def write_cloud(path: str | os.PathLike, cloud: LabeledCloud, num_classes: int | None = None) -> str:
    """Validate and atomically write one cloud as an uncompressed ``.npz``; returns its SHA-256."""
    validate_cloud(cloud, path, num_classes)
    return atomic_save_npz(path, {"xyz": cloud.xyz, "rgb": cloud.rgb, "labels": cloud.labels})


def load_cloud(path: str | os.PathLike, num_classes: int | None = None) -> LabeledCloud:
    """Load and validate one cloud ``.npz``."""
    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as z:
            missing = sorted({"xyz", "rgb", "labels"} - set(z.files))
            if missing:
                raise CloudFormatError(
                    f"{path}: missing keys {missing}; regenerate it with python -m pixvox.prep <dataset>"
                )
            cloud = LabeledCloud(xyz=z["xyz"], rgb=z["rgb"], labels=z["labels"])
    except FileNotFoundError as err:
        raise CloudFormatError(f"{path}: file not found") from err
    except (zipfile.BadZipFile, ValueError, OSError, EOFError) as err:
        if isinstance(err, CloudFormatError):
            raise
        raise CloudFormatError(
            f"{path}: corrupt cloud file ({err}); delete it and rerun its reader (python -m pixvox.prep <dataset>)"
        ) from err
    validate_cloud(cloud, path, num_classes)
    return cloud


class LabeledScenes(Protocol):
    """What the segmentation datasets read: :class:`CloudIndex`, or another layout read in place
    (:class:`pixvox.prep.pointcept.PointceptScenes`)."""

    root: Path
    class_names: list[str]
    ignore_index: int

    @property
    def num_classes(self) -> int: ...

    def __len__(self) -> int: ...

    def names(self) -> list[str]: ...

    def position(self, name: str) -> int: ...

    def path(self, i: int) -> Path: ...

    def load_scene(self, key: int | str) -> LabeledCloud: ...


@dataclass
class CloudRecord:
    """One ``scenes`` entry of ``index.json`` (``file`` relative to the root)."""

    name: str
    file: str
    num_points: int
    sha256: str

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "file": self.file, "num_points": self.num_points, "sha256": self.sha256}


@dataclass
class CloudIndex:
    """``<root>/index.json`` of a labeled-cloud dataset; ``extra`` keeps further top-level keys."""

    root: Path
    class_names: list[str]
    ignore_index: int = IGNORE_INDEX
    scenes: list[CloudRecord] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    def __len__(self) -> int:
        return len(self.scenes)

    def names(self) -> list[str]:
        return [s.name for s in self.scenes]

    def path(self, i: int) -> Path:
        return self.root / self.scenes[i].file

    def load_scene(self, key: int | str) -> LabeledCloud:
        """Load a scene by position or name (validated, labels checked against ``class_names``)."""
        i = key if isinstance(key, int) else self.position(key)
        rec = self.scenes[i]
        c = load_cloud(self.path(i), self.num_classes)
        if c.num_points != rec.num_points:
            raise CloudFormatError(
                f"{self.path(i)}: has {c.num_points} points but index.json says {rec.num_points}; "
                "rerun the prep"
            )
        return c

    def position(self, name: str) -> int:
        """Position of scene ``name`` in :attr:`scenes`."""
        for i, s in enumerate(self.scenes):
            if s.name == name:
                return i
        raise KeyError(f"scene {name!r} not in {self.root / INDEX_JSON}")

    def verify(self, i: int) -> None:
        """Re-hash scene ``i`` against the index (raises on mismatch)."""
        got = sha256_file(self.path(i))
        if got != self.scenes[i].sha256:
            raise CloudFormatError(
                f"{self.path(i)}: sha256 {got} does not match index.json; the file changed"
            )

    def add(self, name: str, cloud: LabeledCloud) -> CloudRecord:
        """Write ``<root>/<name>.npz`` and add (or replace) its entry; call :meth:`write` at the end."""
        file = f"{name}.npz"
        sha = write_cloud(self.root / file, cloud, self.num_classes)
        rec = CloudRecord(name=name, file=file, num_points=cloud.num_points, sha256=sha)
        self.scenes = [s for s in self.scenes if s.name != name] + [rec]
        return rec

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "format": FORMAT,
            "version": VERSION,
            "class_names": list(self.class_names),
            "ignore_index": self.ignore_index,
            "scenes": [s.to_json() for s in self.scenes],
        }
        for k, v in self.extra.items():
            out.setdefault(k, v)
        return out

    def write(self) -> None:
        """Atomically write ``<root>/index.json`` (scenes sorted by name)."""
        self.scenes.sort(key=lambda r: r.name)
        atomic_write_json(self.root / INDEX_JSON, self.to_json())

    @classmethod
    def load(cls, root: str | os.PathLike) -> CloudIndex:
        """Read and validate ``<root>/index.json``."""
        root = Path(root)
        p = root / INDEX_JSON
        d = read_index_json(
            p,
            FORMAT,
            VERSION,
            CloudFormatError,
            "the labeled clouds are absent or incomplete (run python -m pixvox.prep <dataset>)",
        )
        try:
            names = [str(c) for c in d["class_names"]]
            scenes = [
                CloudRecord(str(s["name"]), str(s["file"]), int(s["num_points"]), str(s["sha256"]))
                for s in d["scenes"]
            ]
            known = {"format", "version", "class_names", "ignore_index", "scenes"}
            return cls(
                root=root,
                class_names=names,
                ignore_index=int(d.get("ignore_index", IGNORE_INDEX)),
                scenes=scenes,
                extra={k: v for k, v in d.items() if k not in known},
            )
        except (KeyError, TypeError, ValueError) as err:
            raise CloudFormatError(f"{p}: malformed entry ({err!r})") from err

    @classmethod
    def open_or_create(cls, root: str | os.PathLike, class_names: list[str]) -> CloudIndex:
        """Load ``root``'s index to add scenes to it (class names must agree), or start a new one."""
        root = Path(root)
        if (root / INDEX_JSON).is_file():
            idx = cls.load(root)
            if idx.class_names != list(class_names):
                raise CloudFormatError(
                    f"{root / INDEX_JSON}: has class_names {idx.class_names}, not {list(class_names)}; "
                    "write these clouds to another folder"
                )
            return idx
        root.mkdir(parents=True, exist_ok=True)
        return cls(root=root, class_names=list(class_names))
