"""S3DIS (Stanford3dDataset_v1.2_Aligned_Version) → labeled clouds, one per room.

Input: ``<root>/Area_N/<room>/Annotations/<class>_<k>.txt``, one object per file, lines
``x y z r g b`` (metres, 0-255). The class is the file name before the last ``_``; the 13 classes
are below. ``stairs`` (a few rooms) and any other unknown class are mapped to ``clutter`` and counted.

The release has a few malformed lines (e.g. a stray control character inside a number). They are
skipped and reported with file and line number (log, and ``malformed_lines`` in ``index.json``); the
rest of the file is kept.

CLI::

    python -m pixvox.prep s3dis --root /data/Stanford3dDataset_v1.2_Aligned_Version --out data/s3dis/clouds \\
        [--areas 1 2 3 4 5 6] [--workers 4]

Cloud names are ``Area_N_<room>`` (e.g. ``Area_5_office_1``).
"""

from __future__ import annotations

import argparse
import io
import logging
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from pixvox.io.clouds import CloudIndex, LabeledCloud
from pixvox.io.jobs import run_jobs, setup_logging

log = logging.getLogger("pixvox.prep.s3dis")

CLASS_NAMES = (
    "ceiling",
    "floor",
    "wall",
    "beam",
    "column",
    "window",
    "door",
    "table",
    "chair",
    "sofa",
    "bookcase",
    "board",
    "clutter",
)
CLASS_IDS = {n: i for i, n in enumerate(CLASS_NAMES)}


class S3DISError(ValueError):
    """A room folder has no usable annotation (message names it)."""


def parse_annotation(path: str | Path) -> tuple[np.ndarray, list[dict[str, Any]]]:
    """Read one annotation file → float64 ``[N, 6]`` (x y z r g b) and the malformed lines skipped.

    Fast path: all tokens parse as numbers and come in rows of six. Otherwise every line is parsed on
    its own and lines that are not six numbers are reported as ``{"file", "line", "text"}``.
    """
    path = Path(path)
    data = path.read_bytes()
    try:  # numpy's C parser; any irregular line raises and we fall back to line-by-line parsing
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "input contained no data" for empty files
            arr = np.loadtxt(io.BytesIO(data), dtype=np.float64, ndmin=2, comments=None)
        if arr.shape[1] == 6 and np.isfinite(arr).all():
            return arr, []
    except ValueError:
        pass
    rows, bad = [], []
    for i, ln in enumerate(data.splitlines(), start=1):
        parts = ln.split()
        if not parts:
            continue
        try:
            vals = [float(t) for t in parts]
        except ValueError:
            vals = []
        if len(vals) == 6 and np.isfinite(vals).all():
            rows.append(vals)
        else:
            bad.append(
                {"file": str(path), "line": i, "text": ln[:80].decode("utf-8", errors="backslashreplace")}
            )
    return np.asarray(rows, dtype=np.float64).reshape(-1, 6), bad


def class_of(path: Path) -> str:
    """Class name of an annotation file (``chair_12.txt`` → ``chair``)."""
    stem = path.stem
    return stem.rsplit("_", 1)[0] if "_" in stem else stem


def read_room(room_dir: str | Path) -> tuple[LabeledCloud, dict[str, Any]]:
    """One room's ``Annotations/*.txt`` → labeled cloud and a report (malformed lines, unknown classes)."""
    room_dir = Path(room_dir)
    files = sorted((room_dir / "Annotations").glob("*.txt"))
    if not files:
        raise S3DISError(f"{room_dir / 'Annotations'}: no annotation files")
    pts, labels, malformed, unknown = [], [], [], {}
    for f in files:
        arr, bad = parse_annotation(f)
        malformed.extend(bad)
        name = class_of(f)
        if name not in CLASS_IDS:
            unknown[name] = unknown.get(name, 0) + len(arr)
            name = "clutter"
        pts.append(arr)
        labels.append(np.full(len(arr), CLASS_IDS[name], dtype=np.int32))
    a = np.concatenate(pts)
    cloud = LabeledCloud(
        xyz=a[:, :3].astype(np.float32),
        rgb=np.clip(np.round(a[:, 3:6]), 0, 255).astype(np.uint8),
        labels=np.concatenate(labels),
    )
    return cloud, {"malformed_lines": malformed, "unknown_classes": unknown}


def find_rooms(root: str | Path, areas: list[int] | None = None) -> list[tuple[str, Path]]:
    """(cloud name, room folder) for every room with an ``Annotations`` folder, sorted."""
    root = Path(root)
    if not root.is_dir():
        raise S3DISError(f"{root}: folder not found")
    rooms = []
    for area in sorted(root.glob("Area_*")):
        if areas is not None and area.name.split("_")[-1] not in {str(a) for a in areas}:
            continue
        for room in sorted(p for p in area.iterdir() if (p / "Annotations").is_dir()):
            rooms.append((f"{area.name}_{room.name}", room))
    return rooms


def _job(job: tuple[str, str]) -> tuple[str, LabeledCloud, dict[str, Any]]:
    name, room = job
    cloud, report = read_room(room)
    return name, cloud, report


def convert(
    root: str | Path,
    out: str | Path,
    areas: list[int] | None = None,
    workers: int = 1,
    overwrite: bool = False,
    progress: bool = True,
) -> dict[str, Any]:
    """Convert all rooms (optionally only some areas) to labeled clouds in ``out``; returns a summary."""
    index = CloudIndex.open_or_create(out, list(CLASS_NAMES))
    done = set() if overwrite else set(index.names())
    jobs = [(n, str(r)) for n, r in find_rooms(root, areas) if n not in done]
    malformed: list[dict[str, Any]] = list(index.extra.get("malformed_lines", []))
    unknown: dict[str, int] = dict(index.extra.get("unknown_classes_as_clutter", {}))
    failed = []
    for r in run_jobs(_job, jobs, workers=workers, desc="S3DIS rooms", key=lambda j: j[0], progress=progress):
        if not r.ok:
            failed.append({"input": r.key, "reason": r.error})
            log.error("room %s failed: %s", r.key, r.error)
            continue
        name, cloud, report = r.value
        index.add(name, cloud)
        for m in report["malformed_lines"]:
            log.warning("%s line %d: malformed, skipped: %r", m["file"], m["line"], m["text"])
        malformed.extend(report["malformed_lines"])
        for k, v in report["unknown_classes"].items():
            unknown[k] = unknown.get(k, 0) + v
    index.extra.update(
        {"source": "s3dis", "malformed_lines": malformed, "unknown_classes_as_clutter": unknown}
    )
    index.write()
    return {
        "rooms": len(index),
        "new": len(jobs) - len(failed),
        "failed": failed,
        "malformed_lines": len(malformed),
        "unknown_classes_as_clutter": unknown,
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="pixvox.prep s3dis", description=__doc__.split("\n\n")[0])
    p.add_argument("--root", type=Path, required=True, help="Stanford3dDataset_v1.2_Aligned_Version folder")
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--areas", type=int, nargs="*", default=None)
    p.add_argument("--workers", type=int, default=1)
    p.add_argument("--overwrite", action="store_true")
    p.add_argument("-v", "--verbose", action="store_true")
    a = p.parse_args(argv)
    setup_logging(a.verbose)
    s = convert(a.root, a.out, a.areas, a.workers, a.overwrite)
    log.info("S3DIS: %s", s)
    return 1 if s["failed"] else 0
