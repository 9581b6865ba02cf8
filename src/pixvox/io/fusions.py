"""Voxelized RGB-D fusions: the pretraining data written by :mod:`pixvox.prep.fusion`.

Layout (see docs/data.md)::

    <root>/index.json           written last, atomically
    <root>/samples/<name>.npz   one sample: F consecutive frames fused (uncompressed np.savez)

API for the pretraining dataset::

    index = FusionIndex.load(root)            # validates format, version, entries
    len(index); index.voxel_size; index.frames_per_sample
    sample = index.load_sample(i)             # FusionSample, validated (keys, dtypes, shapes)
    sample = load_fusion_sample(path)         # same for one file
    index.verify(i)                           # re-hash the file against the index (sha256)

Every reader error is a :class:`FusionFormatError` naming the file and the fix.
"""

from __future__ import annotations

import os
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from pixvox.errors import UserError
from pixvox.io.atomic import atomic_save_npz, atomic_write_json, sha256_file
from pixvox.io.index_json import read_index_json

FORMAT = "pixvox.fusions"
VERSION = 1
INDEX_JSON = "index.json"
SAMPLES_DIR = "samples"

#: key -> (dtype, shape pattern). Letters are sizes shared across keys: V voxels, F frames, H x W pixels.
SAMPLE_SCHEMA: dict[str, tuple[np.dtype, tuple[str | int, ...]]] = {
    "coords": (np.dtype(np.int32), ("V", 3)),
    "colors": (np.dtype(np.uint8), ("V", 3)),
    "images": (np.dtype(np.uint8), ("F", "H", "W", 3)),
    "depths": (np.dtype(np.uint16), ("F", "H", "W")),
    "intrinsics": (np.dtype(np.float32), ("F", 3, 3)),
    "cam_to_world": (np.dtype(np.float64), ("F", 4, 4)),
    "voxel_size": (np.dtype(np.float64), ()),
}


class FusionFormatError(UserError, ValueError):
    """A fusion sample or index is missing, corrupt, or does not match the format (message names the file)."""


@dataclass
class FusionSample:
    """One fused sample.

    Attributes:
        coords: int32 ``[V, 3]`` voxel coordinates ``floor(X_world / voxel_size)``.
        colors: uint8 ``[V, 3]`` mean RGB per voxel.
        images: uint8 ``[F, H, W, 3]`` RGB frames registered to depth.
        depths: uint16 ``[F, H, W]`` depth in millimetres, 0 = none.
        intrinsics: float32 ``[F, 3, 3]`` pixels (for ``images``' resolution).
        cam_to_world: float64 ``[F, 4, 4]`` camera-to-world poses in metres.
        voxel_size: voxel edge in metres.
    """

    coords: np.ndarray
    colors: np.ndarray
    images: np.ndarray
    depths: np.ndarray
    intrinsics: np.ndarray
    cam_to_world: np.ndarray
    voxel_size: float

    @property
    def num_voxels(self) -> int:
        return int(self.coords.shape[0])

    @property
    def num_frames(self) -> int:
        return int(self.images.shape[0])

    def arrays(self) -> dict[str, np.ndarray]:
        """The arrays as stored on disk (``voxel_size`` as a float64 scalar)."""
        return {
            "coords": self.coords,
            "colors": self.colors,
            "images": self.images,
            "depths": self.depths,
            "intrinsics": self.intrinsics,
            "cam_to_world": self.cam_to_world,
            "voxel_size": np.asarray(self.voxel_size, dtype=np.float64),
        }


def validate_fusion_arrays(arrays: dict[str, np.ndarray], source: str | os.PathLike) -> None:
    """Check keys, dtypes and shapes of a sample against :data:`SAMPLE_SCHEMA`; raise naming ``source``."""
    missing = sorted(set(SAMPLE_SCHEMA) - set(arrays))
    if missing:
        raise FusionFormatError(
            f"{source}: missing keys {missing}; regenerate it with python -m pixvox.prep fusions"
        )
    sizes: dict[str, int] = {}
    for key, (dtype, pattern) in SAMPLE_SCHEMA.items():
        a = arrays[key]
        if a.dtype != dtype:
            raise FusionFormatError(f"{source}: '{key}' has dtype {a.dtype}, expected {dtype}")
        if a.ndim != len(pattern):
            raise FusionFormatError(f"{source}: '{key}' has shape {a.shape}, expected {pattern}")
        for dim, want in zip(a.shape, pattern):
            if isinstance(want, int):
                ok = dim == want
            else:
                ok = sizes.setdefault(want, dim) == dim
            if not ok:
                raise FusionFormatError(
                    f"{source}: '{key}' has shape {a.shape}, expected {pattern} with "
                    + ", ".join(f"{k}={v}" for k, v in sizes.items())
                )
    if sizes["F"] < 1:
        raise FusionFormatError(f"{source}: sample has no frames")
    vs = float(arrays["voxel_size"])
    if not (np.isfinite(vs) and vs > 0):
        raise FusionFormatError(f"{source}: voxel_size {vs} must be a positive number of metres")
    if not np.isfinite(arrays["cam_to_world"]).all() or not np.isfinite(arrays["intrinsics"]).all():
        raise FusionFormatError(f"{source}: non-finite poses or intrinsics")


def write_fusion_sample(path: str | os.PathLike, sample: FusionSample) -> str:
    """Validate and atomically write one sample as an uncompressed ``.npz``; returns its SHA-256."""
    arrays = sample.arrays()
    validate_fusion_arrays(arrays, path)
    return atomic_save_npz(path, arrays)


def load_fusion_sample(path: str | os.PathLike) -> FusionSample:
    """Load and validate one sample ``.npz``; raises :class:`FusionFormatError` naming the file."""
    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
    except FileNotFoundError as err:
        raise FusionFormatError(f"{path}: file not found; rerun python -m pixvox.prep fusions") from err
    except (zipfile.BadZipFile, ValueError, OSError, EOFError) as err:
        raise FusionFormatError(
            f"{path}: corrupt sample ({err}); delete it and rerun python -m pixvox.prep fusions"
        ) from err
    validate_fusion_arrays(arrays, path)
    return FusionSample(
        coords=arrays["coords"],
        colors=arrays["colors"],
        images=arrays["images"],
        depths=arrays["depths"],
        intrinsics=arrays["intrinsics"],
        cam_to_world=arrays["cam_to_world"],
        voxel_size=float(arrays["voxel_size"]),
    )


@dataclass
class FusionRecord:
    """One entry of ``index.json``'s ``samples`` list (``file`` is relative to the root)."""

    name: str
    file: str
    num_voxels: int
    num_frames: int
    sha256: str
    source: str

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "file": self.file,
            "num_voxels": self.num_voxels,
            "num_frames": self.num_frames,
            "sha256": self.sha256,
            "source": self.source,
        }


class ViewPair(NamedTuple):
    """Two fusions of one scene (sample indices ``a < b`` in the index) and their voxel overlap."""

    a: int
    b: int
    shared: int  #: voxels stored in both
    overlap: float  #: shared / voxels of the smaller fusion


@dataclass
class FusionIndex:
    """``<root>/index.json`` of a fusion dataset.

    Attributes:
        root: dataset folder.
        voxel_size: metres. frames_per_sample: F.
        samples: records sorted by name. skipped: ``[{"input", "reason"}]`` inputs left out.
        extra: further top-level keys (e.g. ``"options"``), kept as they are.
    """

    root: Path
    voxel_size: float
    frames_per_sample: int
    samples: list[FusionRecord] = field(default_factory=list)
    skipped: list[dict[str, Any]] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.samples)

    def path(self, i: int) -> Path:
        return self.root / self.samples[i].file

    def load_sample(self, i: int) -> FusionSample:
        """Load sample ``i`` and check it against its index entry."""
        rec = self.samples[i]
        s = load_fusion_sample(self.path(i))
        if s.num_voxels != rec.num_voxels or s.num_frames != rec.num_frames:
            raise FusionFormatError(
                f"{self.path(i)}: has {s.num_voxels} voxels / {s.num_frames} frames but index.json says "
                f"{rec.num_voxels} / {rec.num_frames}; the dataset is inconsistent, rerun make_fusions"
            )
        return s

    def verify(self, i: int) -> None:
        """Re-hash sample ``i`` and compare with the index (raises on mismatch or a missing file)."""
        try:
            got = sha256_file(self.path(i))
        except OSError as err:
            raise FusionFormatError(
                f"{self.path(i)}: cannot read ({err}); rerun python -m pixvox.prep fusions"
            ) from err
        if got != self.samples[i].sha256:
            raise FusionFormatError(
                f"{self.path(i)}: sha256 {got} does not match index.json; the file changed"
            )

    def view_pairs(self, min_overlap: float) -> list[ViewPair]:
        """The stored view pairs (``index.json``'s ``view_pairs``) with ``overlap >= min_overlap``.

        Raises :class:`FusionFormatError` naming the file when the index has none (prepared before
        pairs were stored) or stored only pairs above ``min_overlap``, or an entry is malformed.
        """
        p = self.root / INDEX_JSON
        rerun = "rerun python -m pixvox.prep fusions with the same options (it reuses the samples)"
        vp = self.extra.get("view_pairs")
        if not isinstance(vp, dict) or not isinstance(vp.get("scenes"), dict):
            raise FusionFormatError(f"{p}: no view pairs (index written before they were stored); {rerun}")
        stored = float(vp.get("min_overlap", 1.0))
        if min_overlap < stored - 1e-12:
            raise FusionFormatError(
                f"{p}: holds the view pairs with overlap >= {stored}, not those >= {min_overlap}; "
                f"{rerun} and --pair-min-overlap {min_overlap}"
            )
        row = {r.name: i for i, r in enumerate(self.samples)}
        out = []
        for scene, pairs in vp["scenes"].items():
            try:
                for e in pairs:
                    if float(e["overlap"]) >= min_overlap:
                        a, b = sorted((row[str(e["a"])], row[str(e["b"])]))
                        out.append(ViewPair(a, b, int(e["shared"]), float(e["overlap"])))
            except (KeyError, TypeError, ValueError) as err:
                raise FusionFormatError(
                    f"{p}: malformed view pair in scene {scene!r} ({err!r}); {rerun}"
                ) from err
        return out

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "format": FORMAT,
            "version": VERSION,
            "voxel_size": self.voxel_size,
            "frames_per_sample": self.frames_per_sample,
            "samples": [r.to_json() for r in self.samples],
            "skipped": self.skipped,
        }
        for k, v in self.extra.items():
            out.setdefault(k, v)
        return out

    def write(self) -> None:
        """Atomically write ``<root>/index.json`` (samples sorted by name)."""
        self.samples.sort(key=lambda r: r.name)
        atomic_write_json(self.root / INDEX_JSON, self.to_json())

    @classmethod
    def load(cls, root: str | os.PathLike) -> FusionIndex:
        """Read and validate ``<root>/index.json``."""
        root = Path(root)
        p = root / INDEX_JSON
        d = read_index_json(
            p,
            FORMAT,
            VERSION,
            FusionFormatError,
            "the fusion dataset is absent or incomplete (run python -m pixvox.prep fusions)",
        )
        try:
            samples = [
                FusionRecord(
                    name=str(s["name"]),
                    file=str(s["file"]),
                    num_voxels=int(s["num_voxels"]),
                    num_frames=int(s["num_frames"]),
                    sha256=str(s["sha256"]),
                    source=str(s.get("source", "")),
                )
                for s in d["samples"]
            ]
            known = {"format", "version", "voxel_size", "frames_per_sample", "samples", "skipped"}
            return cls(
                root=root,
                voxel_size=float(d["voxel_size"]),
                frames_per_sample=int(d["frames_per_sample"]),
                samples=samples,
                skipped=list(d.get("skipped", [])),
                extra={k: v for k, v in d.items() if k not in known},
            )
        except (KeyError, TypeError, ValueError) as err:
            raise FusionFormatError(
                f"{p}: malformed entry ({err!r}); rerun python -m pixvox.prep fusions"
            ) from err
