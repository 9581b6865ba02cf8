"""ScanNet labeled scans → labeled clouds with ScanNet-20 labels: the release's meshes
(``*_vh_clean_2.ply`` + ``*.labels.ply`` or aggregation/segments JSON) and mmdetection3d's arrays
(``<scene>_vert_all.npy`` + ``<scene>_sem_label_all.npy``)."""

from __future__ import annotations

import csv
import json
import struct
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from pixvox.io.clouds import CloudIndex, LabeledCloud, load_npy
from pixvox.prep.scannet.benchmark import (
    SCANNET20_CLASS_NAMES,
    SCANNET20_NYU40_IDS,
    ScanNetFormatError,
    nyu40_to_scannet20,
)


def read_ply_vertices(path: str | Path, properties: tuple[str, ...]) -> dict[str, np.ndarray]:
    """Vertex properties of a PLY file (ASCII or binary) as numpy arrays; clear error when one is missing."""
    from plyfile import PlyData, PlyElementParseError, PlyHeaderParseError

    path = Path(path)
    try:
        ply = PlyData.read(str(path))
    except FileNotFoundError as err:
        raise ScanNetFormatError(f"{path}: file not found") from err
    except (PlyHeaderParseError, PlyElementParseError, ValueError, EOFError, struct.error) as err:
        raise ScanNetFormatError(f"{path}: unreadable PLY ({err}); re-download it") from err
    if "vertex" not in ply:
        raise ScanNetFormatError(f"{path}: no 'vertex' element")
    v = ply["vertex"]
    have = {p.name for p in v.properties}
    missing = [p for p in properties if p not in have]
    if missing:
        raise ScanNetFormatError(f"{path}: vertex properties {missing} missing (has {sorted(have)})")
    return {p: np.asarray(v[p]) for p in properties}


def load_label_tsv(path: str | Path) -> tuple[dict[str, int], dict[int, str]]:
    """``scannetv2-labels.combined.tsv`` → (raw_category → NYU40 id, NYU40 id → nyu40class name)."""
    path = Path(path)
    raw_to_nyu: dict[str, int] = {}
    nyu_names: dict[int, str] = {}
    with open(path, newline="") as f:
        reader = csv.DictReader(f, delimiter="\t")
        need = {"raw_category", "nyu40id", "nyu40class"}
        if reader.fieldnames is None or not need <= set(reader.fieldnames):
            raise ScanNetFormatError(f"{path}: needs columns {sorted(need)}, has {reader.fieldnames}")
        for row in reader:
            try:
                nyu = int(row["nyu40id"])
            except (TypeError, ValueError):
                continue
            raw_to_nyu[row["raw_category"]] = nyu
            nyu_names.setdefault(nyu, row["nyu40class"])
    missing = [i for i in SCANNET20_NYU40_IDS if i not in nyu_names]
    if missing:
        raise ScanNetFormatError(f"{path}: NYU40 ids {missing} of the ScanNet-20 classes do not occur in it")
    return raw_to_nyu, nyu_names


def labels_from_aggregation(
    scene_dir: Path, scene: str, raw_to_nyu: dict[str, int], num_vertices: int
) -> np.ndarray:
    """Per-vertex NYU40 ids from ``<scene>.aggregation.json`` + ``<scene>_vh_clean_2.0.010000.segs.json``."""
    agg_path = scene_dir / f"{scene}.aggregation.json"
    seg_path = scene_dir / f"{scene}_vh_clean_2.0.010000.segs.json"
    try:
        agg = json.loads(agg_path.read_text())
        seg_indices = np.asarray(json.loads(seg_path.read_text())["segIndices"], dtype=np.int64)
    except (FileNotFoundError, KeyError, json.JSONDecodeError) as err:
        raise ScanNetFormatError(f"{scene_dir}: cannot read aggregation/segments ({err})") from err
    if seg_indices.shape[0] != num_vertices:
        raise ScanNetFormatError(
            f"{seg_path}: {seg_indices.shape[0]} segment ids for {num_vertices} vertices"
        )
    nyu = np.zeros(num_vertices, dtype=np.int64)
    for group in agg.get("segGroups", []):
        label = raw_to_nyu.get(group.get("label", ""), 0)
        nyu[np.isin(seg_indices, np.asarray(group.get("segments", []), dtype=np.int64))] = label
    return nyu


def scan_to_cloud(
    scene_dir: str | Path, raw_to_nyu: dict[str, int] | None = None, label_source: str = "ply"
) -> LabeledCloud:
    """One scan folder (``<scene>_vh_clean_2.ply`` + labels) → labeled cloud with ScanNet-20 labels."""
    scene_dir = Path(scene_dir)
    scene = scene_dir.name
    mesh = read_ply_vertices(scene_dir / f"{scene}_vh_clean_2.ply", ("x", "y", "z", "red", "green", "blue"))
    n = mesh["x"].shape[0]
    if label_source == "ply":
        lab_path = scene_dir / f"{scene}_vh_clean_2.labels.ply"
        nyu = read_ply_vertices(lab_path, ("label",))["label"]
        if nyu.shape[0] != n:
            raise ScanNetFormatError(f"{lab_path}: {nyu.shape[0]} labeled vertices, the mesh has {n}")
    elif label_source == "aggregation":
        if raw_to_nyu is None:
            raise ValueError("label_source='aggregation' needs the labels tsv (raw category → NYU40)")
        nyu = labels_from_aggregation(scene_dir, scene, raw_to_nyu, n)
    else:
        raise ValueError(f"label_source must be 'ply' or 'aggregation', got {label_source!r}")
    xyz = np.stack([mesh["x"], mesh["y"], mesh["z"]], 1).astype(np.float32)
    rgb = np.stack([mesh["red"], mesh["green"], mesh["blue"]], 1).astype(np.uint8)
    return LabeledCloud(xyz=xyz, rgb=rgb, labels=nyu40_to_scannet20(nyu, str(scene_dir)))


def read_scannet_npy(folder: str | Path, scene: str) -> LabeledCloud:
    """mmdetection3d's arrays of one scene → labeled cloud with ScanNet-20 labels.

    ``<scene>_vert_all.npy``: float32 ``[N, 6]`` x, y, z (metres), r, g, b (0-255);
    ``<scene>_sem_label_all.npy``: NYU40 ids ``[N]`` (0 = unannotated). Errors name the file.
    """
    folder = Path(folder)
    vpath, lpath = folder / f"{scene}_vert_all.npy", folder / f"{scene}_sem_label_all.npy"
    verts, nyu = (load_npy(p, "mmdetection3d-style ScanNet .npy files") for p in (vpath, lpath))
    if verts.ndim != 2 or verts.shape[1] < 6:
        raise ScanNetFormatError(f"{vpath}: expected [N, 6] (x, y, z, r, g, b), got {verts.shape}")
    if nyu.shape != (verts.shape[0],):
        raise ScanNetFormatError(
            f"{lpath}: expected {verts.shape[0]} labels (one per vertex of {vpath.name}), got shape {nyu.shape}"
        )
    xyz = np.ascontiguousarray(verts[:, :3], dtype=np.float32)
    if not np.isfinite(xyz).all():
        raise ScanNetFormatError(f"{vpath}: NaN or inf coordinates")
    rgb = np.clip(np.round(verts[:, 3:6]), 0, 255).astype(np.uint8)
    return LabeledCloud(xyz=xyz, rgb=rgb, labels=nyu40_to_scannet20(nyu, str(lpath)))


def convert_scannet_npy(
    folder: str | Path, out_root: str | Path, scenes: Sequence[str] | None = None
) -> CloudIndex:
    """Write the mmdetection3d ScanNet scans of ``folder`` (all ``*_vert_all.npy``, or ``scenes``) as labeled
    clouds with ScanNet-20 labels under ``out_root`` (index.json written last). Returns the index."""
    folder = Path(folder)
    if scenes is None:
        scenes = sorted(p.name[: -len("_vert_all.npy")] for p in folder.glob("*_vert_all.npy"))
    if not scenes:
        raise ScanNetFormatError(f"{folder}: no <scene>_vert_all.npy files to convert")
    index = CloudIndex.open_or_create(out_root, list(SCANNET20_CLASS_NAMES))
    index.extra.setdefault("source", f"scannet npy: {folder}")
    for scene in scenes:
        index.add(scene, read_scannet_npy(folder, scene))
    index.write()
    return index
