"""Pointcept's preprocessed scenes, read in place as labeled clouds (no conversion, nothing written).

Layout (Pointcept's ScanNet and S3DIS preprocessing)::

    <root>/[<group>/]<scene>/coord.npy      float (N, 3) metres
                             color.npy      uint8 (N, 3) RGB 0-255 (a float array within [0, 255] is rounded)
                             segment20.npy  int (N,) ScanNet-20 class 0..19, -1 = ignored   (ScanNet)
                             segment200.npy int (N,) ScanNet-200 class 0..199, -1 = ignored (ScanNet)
                             segment.npy    int (N,) S3DIS class 0..12                      (S3DIS)
                             normal.npy, instance.npy (not used)

A scene folder directly under the root is named by its folder name (``scene0011_00``); one level deeper
the name is ``<group>_<scene>`` (S3DIS: ``Area_5_office_1``), except under Pointcept's split folders
``train/``, ``val/``, ``test/``, which do not enter the name. :class:`PointceptScenes` offers the
interface of :class:`pixvox.io.clouds.CloudIndex` the segmentation datasets use (``names``,
``position``, ``load_scene``, ``path``, ``class_names``, ``num_classes``, ``ignore_index``, ``root``).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from pixvox.io.clouds import IGNORE_INDEX, CloudFormatError, LabeledCloud, load_npy, validate_cloud
from pixvox.prep import s3dis
from pixvox.prep.scannet.benchmark import SCANNET20_CLASS_NAMES, SCANNET200_CLASS_NAMES

#: Label files Pointcept writes and the classes their ids index.
LABEL_FIELDS = {
    "segment20": SCANNET20_CLASS_NAMES,
    "segment200": SCANNET200_CLASS_NAMES,
    "segment": s3dis.CLASS_NAMES,
}
SPLIT_FOLDERS = ("train", "val", "test")


def scene_folders(root: str | Path) -> dict[str, Path]:
    """``{name: folder}`` of the Pointcept scene folders (holding ``coord.npy``) under ``root``, by name."""
    root = Path(root)
    found: dict[str, Path] = {}
    if not root.is_dir():
        return found
    for sub in sorted(p for p in root.iterdir() if p.is_dir()):
        if (sub / "coord.npy").is_file():
            candidates = [(sub.name, sub)]
        else:
            prefix = "" if sub.name in SPLIT_FOLDERS else f"{sub.name}_"
            candidates = [(prefix + s.name, s) for s in sorted(sub.iterdir()) if (s / "coord.npy").is_file()]
        for name, folder in candidates:
            if name in found:
                raise CloudFormatError(f"{folder} and {found[name]}: two Pointcept scenes named {name!r}")
            found[name] = folder
    return dict(sorted(found.items()))


def is_pointcept_root(root: str | Path) -> bool:
    """Whether ``root`` holds scene folders in Pointcept's layout."""
    try:
        return bool(scene_folders(root))
    except CloudFormatError:
        return True  # it is that layout, with a problem the reader will report


def read_pointcept_scene(folder: str | Path, label_field: str = "segment20") -> LabeledCloud:
    """One Pointcept scene folder → :class:`LabeledCloud` (xyz float32, rgb uint8, labels int32).

    Wrong dtypes or shapes, arrays of different lengths, NaN coordinates or labels outside the classes
    of ``label_field`` are a :class:`CloudFormatError` naming the file.
    """
    folder = Path(folder)
    if label_field not in LABEL_FIELDS:
        raise ValueError(f"label field {label_field!r}: use one of {sorted(LABEL_FIELDS)}")
    paths = {k: folder / f"{k}.npy" for k in ("coord", "color", label_field)}
    expected = f"Pointcept's {', '.join(f'{k}.npy' for k in paths)} in every scene folder"
    coord, color, labels = (load_npy(p, expected) for p in paths.values())
    if coord.dtype.kind != "f" or coord.ndim != 2 or coord.shape[1] != 3:
        raise CloudFormatError(
            f"{paths['coord']}: expected float (N, 3) coordinates, got {coord.dtype} {coord.shape}"
        )
    n = coord.shape[0]
    if color.shape != (n, 3) or color.dtype.kind not in "uif":
        raise CloudFormatError(
            f"{paths['color']}: expected ({n}, 3) RGB (one row per point), got {color.dtype} {color.shape}"
        )
    if labels.shape != (n,) or labels.dtype.kind not in "iu":
        raise CloudFormatError(
            f"{paths[label_field]}: expected {n} integer labels (one per point), got {labels.dtype} {labels.shape}"
        )
    if not np.isfinite(coord).all():
        raise CloudFormatError(f"{paths['coord']}: NaN or inf coordinates")
    if color.dtype != np.uint8:
        if not np.isfinite(color).all() or (color.size and (color.min() < 0 or color.max() > 255)):
            raise CloudFormatError(f"{paths['color']}: colors must lie in [0, 255]")
        color = np.round(color).astype(np.uint8)
    cloud = LabeledCloud(coord.astype(np.float32), np.ascontiguousarray(color), labels.astype(np.int32))
    validate_cloud(cloud, paths[label_field], len(LABEL_FIELDS[label_field]))
    return cloud


class PointceptScenes:
    """The scenes of a Pointcept-layout folder, read in place; the labeled-cloud index interface."""

    def __init__(self, root: str | Path, label_field: str | None = None) -> None:
        self.root = Path(root)
        self.folders = scene_folders(self.root)
        if not self.folders:
            raise CloudFormatError(f"{self.root}: no Pointcept scene folders (<scene>/coord.npy) found")
        if label_field is None:
            first = next(iter(self.folders.values()))
            present = [k for k in ("segment20", "segment") if (first / f"{k}.npy").is_file()]
            if not present:
                raise CloudFormatError(
                    f"{first}: no segment20.npy or segment.npy; set data.label_field to the label file to use"
                )
            label_field = present[0]
        if label_field not in LABEL_FIELDS:
            raise ValueError(f"data.label_field={label_field!r}: use one of {sorted(LABEL_FIELDS)}")
        self.label_field = label_field
        self.class_names = list(LABEL_FIELDS[label_field])
        self.ignore_index = IGNORE_INDEX
        self._names = list(self.folders)

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    def __len__(self) -> int:
        return len(self._names)

    def names(self) -> list[str]:
        return list(self._names)

    def position(self, name: str) -> int:
        try:
            return self._names.index(name)
        except ValueError:
            raise KeyError(f"scene {name!r} not in {self.root} (Pointcept layout)") from None

    def path(self, i: int) -> Path:
        return self.folders[self._names[i]]

    def load_scene(self, key: int | str) -> LabeledCloud:
        i = key if isinstance(key, int) else self.position(key)
        return read_pointcept_scene(self.path(i), self.label_field)
