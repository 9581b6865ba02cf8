"""ScanNet v2: ``.sens`` RGB-D streams → exported frames; labeled meshes → labeled clouds; splits.

Subcommands::

    # every 25th frame of each scan's .sens (streamed: skipped frames are never decoded)
    python -m pixvox.prep scannet frames --scans /data/scannet/scans --out data/scannet/frames --workers 4
    # *_vh_clean_2.ply + *_vh_clean_2.labels.ply → xyz, rgb, ScanNet-20 labels
    python -m pixvox.prep scannet clouds --scans /data/scannet/scans --out data/scannet/clouds \\
        [--labels-tsv scannetv2-labels.combined.tsv]
    # the mmdetection3d-style arrays (<scene>_vert_all.npy, <scene>_sem_label_all.npy)
    python -m pixvox.prep scannet npy-clouds --src ../shared/data/scannet_scene0000 --out data/scannet/clouds
    # official lists (given by you) + data-efficient subsets from a seed: the files the
    # configs/finetune/scannet_*.yaml recipes read (data/scannet/splits next to data/scannet/clouds)
    python -m pixvox.prep scannet splits --split-dir lists/ --out data/scannet/splits --seed 0 \\
        [--clouds data/scannet/clouds]

The library parts: :mod:`.sens` (the ``.sens`` stream), :mod:`.frames` (export, color registration),
:mod:`.meshes` (labeled clouds), :mod:`.benchmark` (classes, NYU40 map, scene lists, data-efficient
subsets), :mod:`.splits` (the split files).
"""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path
from typing import Any

from pixvox.io.clouds import CloudIndex, LabeledCloud
from pixvox.io.jobs import run_jobs, setup_logging
from pixvox.prep.scannet.benchmark import SCANNET20_CLASS_NAMES, ScanNetFormatError
from pixvox.prep.scannet.frames import export_sens
from pixvox.prep.scannet.meshes import load_label_tsv, read_scannet_npy, scan_to_cloud
from pixvox.prep.scannet.splits import write_splits

log = logging.getLogger("pixvox.prep.scannet")


def _frames_job(job: dict[str, Any]) -> dict[str, Any]:
    info = export_sens(
        job["sens"],
        job["out"],
        frame_skip=job["frame_skip"],
        max_frames=job["max_frames"],
        overwrite=job["overwrite"],
    )
    return {"frames": len(info["frames"]), "skipped": len(info["skipped"]), "reused": info["reused"]}


def _cloud_job(job: dict[str, Any]) -> tuple[str, LabeledCloud]:
    raw_to_nyu = load_label_tsv(job["tsv"])[0] if job["tsv"] else None
    return job["name"], scan_to_cloud(job["dir"], raw_to_nyu, job["label_source"])


def _scan_dirs(scans: Path, only: list[str] | None) -> list[Path]:
    if not scans.is_dir():
        raise ScanNetFormatError(
            f"{scans}: folder not found (expected ScanNet's scans/ with one folder per scan)"
        )
    dirs = sorted(p for p in scans.iterdir() if p.is_dir() and (only is None or p.name in only))
    return dirs


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="pixvox.prep scannet", description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    f = sub.add_parser("frames", help="export .sens streams to exported frames")
    f.add_argument("--scans", type=Path, required=True, help="folder of scan folders (<scene>/<scene>.sens)")
    f.add_argument("--out", type=Path, required=True)
    f.add_argument("--frame-skip", type=int, default=25)
    f.add_argument("--max-frames", type=int, default=None)
    c = sub.add_parser("clouds", help="labeled meshes to labeled clouds")
    c.add_argument("--scans", type=Path, required=True)
    c.add_argument("--out", type=Path, required=True)
    c.add_argument("--labels-tsv", type=Path, default=None, help="scannetv2-labels.combined.tsv")
    c.add_argument(
        "--label-source",
        choices=["ply", "aggregation"],
        default="ply",
        help="NYU40 ids from *_vh_clean_2.labels.ply (default) or aggregation+segs json via the tsv",
    )
    n = sub.add_parser("npy-clouds", help="mmdetection3d-style npy arrays to labeled clouds")
    n.add_argument("--src", type=Path, required=True)
    n.add_argument("--out", type=Path, required=True)
    s = sub.add_parser("splits", help="official lists + data-efficient subsets")
    s.add_argument("--split-dir", type=Path, required=True, help="folder with scannetv2_{train,val,test}.txt")
    s.add_argument("--out", type=Path, required=True)
    s.add_argument("--seed", type=int, default=0)
    s.add_argument(
        "--clouds", type=Path, default=None, help="prepared clouds (for the limited-points subsets)"
    )
    for q in (f, c):
        q.add_argument("--scenes", nargs="*", default=None, help="only these scene names")
        q.add_argument("--workers", type=int, default=1)
        q.add_argument("--overwrite", action="store_true")
    p.add_argument("-v", "--verbose", action="store_true")
    a = p.parse_args(argv)
    setup_logging(a.verbose)
    failures: list[dict[str, str]] = []
    if a.cmd == "frames":
        jobs = []
        for d in _scan_dirs(a.scans, a.scenes):
            sens = d / f"{d.name}.sens"
            if not sens.is_file():
                failures.append({"input": str(d), "reason": f"no {sens.name}"})
                continue
            jobs.append(
                {
                    "sens": str(sens),
                    "out": str(a.out / d.name),
                    "frame_skip": a.frame_skip,
                    "max_frames": a.max_frames,
                    "overwrite": a.overwrite,
                }
            )
        kept = 0
        for r in run_jobs(
            _frames_job, jobs, workers=a.workers, desc="scans", key=lambda j: Path(j["sens"]).stem
        ):
            if r.ok:
                kept += 1
            else:
                failures.append({"input": r.key, "reason": r.error})
        log.info("exported %d scans, %d failed", kept, len(failures))
    elif a.cmd == "clouds":
        index = CloudIndex.open_or_create(a.out, list(SCANNET20_CLASS_NAMES))
        done = set(index.names()) if not a.overwrite else set()
        jobs = [
            {
                "name": d.name,
                "dir": str(d),
                "tsv": str(a.labels_tsv) if a.labels_tsv else None,
                "label_source": a.label_source,
            }
            for d in _scan_dirs(a.scans, a.scenes)
            if d.name not in done
        ]
        for r in run_jobs(_cloud_job, jobs, workers=a.workers, desc="meshes", key=lambda j: j["name"]):
            if r.ok:
                index.add(*r.value)
            else:
                failures.append({"input": r.key, "reason": r.error})
        index.write()
    elif a.cmd == "npy-clouds":
        index = CloudIndex.open_or_create(a.out, list(SCANNET20_CLASS_NAMES))
        for vert in sorted(a.src.glob("*_vert_all.npy")):
            scene = vert.name[: -len("_vert_all.npy")]
            try:
                index.add(scene, read_scannet_npy(a.src, scene))
            except (ValueError, OSError) as err:
                failures.append({"input": str(vert), "reason": str(err)})
        index.write()
        log.info("wrote %d clouds to %s", len(index), a.out)
    elif a.cmd == "splits":
        print(json.dumps(write_splits(a.split_dir, a.out, a.seed, a.clouds), indent=1))
    for fl in failures:
        log.error("failed %s: %s", fl["input"], fl["reason"])
    return 1 if failures else 0
