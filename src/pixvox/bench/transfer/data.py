"""The benchmark's data: pretraining fusions whose last frames are held out, and the labeled rooms.

Pretraining sequences (any layout :mod:`pixvox.prep.sequence` reads) are exported and fused once
(one frame per sample) into ``<work>/fusions/all``; two index-only views of it follow:
``<work>/fusions/train_<tag>`` (the first ``1 - heldout_fraction`` of every sequence's samples, in
frame order) and ``<work>/fusions/heldout_<tag>`` (the contiguous rest, never seen in pretraining);
``tag`` hashes the sequence names and the fraction. Both list the
sample files of ``all`` (relative paths), so nothing is copied.

An arm that fuses F > 1 frames per sample (``data.frames_per_sample``, ``data.frame_stride``) gets
its own fusions ``<work>/fusions/all_f<F>_s<stride>`` and its own training view
``train_f<F>_s<stride>_<tag>``: the samples whose every frame comes before the held-out tail defined
by the single-frame split (a sample that straddles the cut is dropped). The held-out tail, and so
retrieval, is the same single-frame view for every arm.

Labeled rooms are given as paths: a Pointcept scene folder (``coord.npy``, ``color.npy``,
``segment20.npy``) or an mmdetection3d ScanNet scene (``<dir>/<scene>`` with
``<scene>_vert_all.npy`` and ``<scene>_sem_label_all.npy`` beside it; the ``_vert_all.npy`` file
itself also works). They are written once into one labeled-cloud folder (ScanNet-20 labels) that the
probe and the fine-tuning job both read.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from pixvox.errors import MissingDataError, UserError
from pixvox.io.clouds import INDEX_JSON, CloudIndex, LabeledCloud
from pixvox.io.fusions import FusionIndex, FusionRecord
from pixvox.prep.fusion import make_fusions
from pixvox.prep.pointcept import read_pointcept_scene
from pixvox.prep.scannet.benchmark import SCANNET20_CLASS_NAMES
from pixvox.prep.scannet.meshes import read_scannet_npy
from pixvox.prep.sequence import export_sequence, find_sequences

log = logging.getLogger("pixvox.transfer")
MMDET_SUFFIX = "_vert_all.npy"


class RoomSplitError(UserError, ValueError):
    """A room listed for both training and testing, or a room path no reader knows."""


@dataclass(frozen=True)
class FusionSplit:
    """Prepared pretraining data: fusion roots of the training and held-out samples (the held-out
    ones always single-frame fusions), and the frames per training sample."""

    train: Path
    heldout: Path
    num_train: int
    num_heldout: int
    frames_per_sample: int = 1
    frame_stride: int = 1


def sample_scene(name: str) -> str:
    """The scene of a fusion sample named ``<scene>_<first frame id, 6 digits>``."""
    return name.rsplit("_", 1)[0]


def contiguous_split(names: Sequence[str], heldout_fraction: float) -> tuple[list[str], list[str]]:
    """Per scene, the first samples in frame order train; the last ``heldout_fraction`` (at least one
    when the scene has two or more samples) is held out. Returns (train names, held-out names)."""
    if not 0 <= heldout_fraction < 1:
        raise ValueError(f"heldout_fraction must be in [0, 1), got {heldout_fraction}")
    by_scene: dict[str, list[str]] = {}
    for n in names:
        by_scene.setdefault(sample_scene(n), []).append(n)
    train, held = [], []
    for scene_names in by_scene.values():
        ordered = sorted(scene_names, key=lambda n: int(n.rsplit("_", 1)[1]))
        k = round(len(ordered) * heldout_fraction)
        if heldout_fraction > 0 and len(ordered) > 1:
            k = max(k, 1)
        cut = len(ordered) - k
        train += ordered[:cut]
        held += ordered[cut:]
    return train, held


def sample_frame_ids(source: str, where: str) -> list[int]:
    """The frame ids of a fusion sample from its index ``source`` (``"<scene> frames 3,4,5"``, as
    :func:`pixvox.prep.fusion.make_fusions` writes it); ``where`` names the index in errors."""
    _, sep, ids = source.rpartition(" frames ")
    try:
        if not sep:
            raise ValueError
        return [int(i) for i in ids.split(",")]
    except ValueError:
        raise MissingDataError(
            f"{where}: sample source {source!r} does not list its frames ('<scene> frames i,j,...'); "
            "delete the folder so the benchmark fuses it again"
        ) from None


def before_heldout(
    samples: Sequence[tuple[str, list[int]]], heldout: Sequence[tuple[str, list[int]]]
) -> list[str]:
    """Names of ``samples`` (name, frame ids) none of whose frames reaches the held-out tail: per
    scene, every frame id is below the first frame of that scene's ``heldout`` samples (scenes with
    nothing held out keep every sample)."""
    cut: dict[str, int] = {}
    for name, ids in heldout:
        scene = sample_scene(name)
        cut[scene] = min(cut.get(scene, min(ids)), min(ids))
    return [n for n, ids in samples if max(ids) < cut.get(sample_scene(n), max(ids) + 1)]


def write_subset_index(full: FusionIndex, names: Sequence[str], root: Path) -> Path:
    """An index at ``root`` listing the samples ``names`` of ``full`` (files stay where they are) and
    the view pairs among them only."""
    keep = set(names)
    root.mkdir(parents=True, exist_ok=True)
    rel = Path(os.path.relpath(full.root.resolve(), root.resolve()))  # the pair of folders can move together
    samples = [r for r in full.samples if r.name in keep]
    for r in samples:
        r.file = str(rel / r.file)
    extra = dict(full.extra)
    vp = extra.get("view_pairs")
    if isinstance(vp, dict) and isinstance(vp.get("scenes"), dict):
        scenes = {
            s: [e for e in pairs if str(e["a"]) in keep and str(e["b"]) in keep]
            for s, pairs in vp["scenes"].items()
        }
        extra["view_pairs"] = {**vp, "scenes": scenes}
    root.mkdir(parents=True, exist_ok=True)
    FusionIndex(root, full.voxel_size, full.frames_per_sample, samples, [], extra).write()
    return root


def prepare_fusions(
    sequences: Sequence[str | Path],
    work: Path,
    *,
    voxel_size: float,
    image_size: tuple[int, int] | None,
    depth_max: float,
    heldout_fraction: float = 0.2,
    frames_per_sample: int = 1,
    frame_stride: int | None = None,
) -> FusionSplit:
    """Export and fuse ``sequences`` into ``work/fusions/all`` (reused when done), then write the
    ``train`` / ``heldout`` views (see the module doc); with ``frames_per_sample`` F > 1 (or a
    ``frame_stride`` > 1; default F) the training view is of F-frame fusions before the held-out tail."""
    stride = frames_per_sample if frame_stride is None else frame_stride
    if frames_per_sample < 1 or stride < 1:
        raise ValueError(
            f"frames_per_sample and frame_stride must be >= 1, got {frames_per_sample}, {stride}"
        )
    frames = work / "frames"
    folders: list[Path] = []
    for seq in sequences:
        if not Path(seq).is_dir():
            raise MissingDataError(
                f"--pretrain-data {seq}: not a folder (an RGB-D sequence, or a folder of them)"
            )
        folders += find_sequences(seq)
    names = [f.name for f in folders]
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise UserError(f"--pretrain-data: two sequences named {dup}; rename one folder")
    for folder in folders:
        out = frames / folder.name
        if not (out / "frames.json").is_file():
            log.info("exporting %s to %s", folder, out)
            export_sequence(folder, out)
    all_root = work / "fusions" / "all"
    index_file = all_root / "index.json"
    fused = (
        {sample_scene(r.name) for r in FusionIndex.load(all_root).samples} if index_file.is_file() else set()
    )
    if not set(names) <= fused:  # new sequences: fuse them (samples already made are reused)
        make_fusions(frames, all_root, voxel_size=voxel_size, depth_max=depth_max, image_size=image_size)
    full = FusionIndex.load(all_root)
    missing = sorted(set(names) - {sample_scene(r.name) for r in full.samples})
    if missing:
        raise MissingDataError(f"{index_file}: no fusion of {missing} could be made (see its 'skipped' list)")
    wanted = set(names)
    chosen = [r.name for r in full.samples if sample_scene(r.name) in wanted]
    train, held = contiguous_split(chosen, heldout_fraction)
    # the views are named by what they hold, so a run's resolved data.root names its data
    tag = hashlib.sha256(json.dumps([sorted(names), heldout_fraction]).encode()).hexdigest()[:8]
    t = write_subset_index(FusionIndex.load(all_root), train, work / "fusions" / f"train_{tag}")
    h = write_subset_index(FusionIndex.load(all_root), held, work / "fusions" / f"heldout_{tag}")
    if (frames_per_sample, stride) == (1, 1):
        return FusionSplit(t, h, len(train), len(held))
    held_names = set(held)
    return _multi_frame_split(
        frames,
        work,
        names,
        [r for r in full.samples if r.name in held_names],
        h,
        voxel_size=voxel_size,
        depth_max=depth_max,
        image_size=image_size,
        frames_per_sample=frames_per_sample,
        stride=stride,
        tag=tag,
    )


def _multi_frame_split(
    frames: Path,
    work: Path,
    names: list[str],
    held: list[FusionRecord],
    heldout_root: Path,
    *,
    voxel_size: float,
    depth_max: float,
    image_size: tuple[int, int] | None,
    frames_per_sample: int,
    stride: int,
    tag: str,
) -> FusionSplit:
    """F-frame fusions of the exported ``frames`` (reused when done) and their training view: the
    samples entirely before the single-frame held-out samples ``held`` (see :func:`before_heldout`)."""
    key = f"f{frames_per_sample}_s{stride}"
    root = work / "fusions" / f"all_{key}"
    index_file = root / "index.json"
    fused = {sample_scene(r.name) for r in FusionIndex.load(root).samples} if index_file.is_file() else set()
    if not set(names) <= fused:
        log.info("fusing %d frames per sample (stride %d) into %s", frames_per_sample, stride, root)
        make_fusions(
            frames,
            root,
            frames_per_sample=frames_per_sample,
            stride=stride,
            voxel_size=voxel_size,
            depth_max=depth_max,
            image_size=image_size,
        )
    full = FusionIndex.load(root)
    chosen = [
        (r.name, sample_frame_ids(r.source, str(index_file)))
        for r in full.samples
        if sample_scene(r.name) in set(names)
    ]
    if not chosen:
        raise MissingDataError(
            f"{index_file}: no fusion of {frames_per_sample} frames could be made from {sorted(names)} "
            "(see its 'skipped' list: a sequence shorter than data.frames_per_sample?)"
        )
    heldout_ids = [(r.name, sample_frame_ids(r.source, str(heldout_root / "index.json"))) for r in held]
    train = before_heldout(chosen, heldout_ids)
    t = write_subset_index(full, train, work / "fusions" / f"train_{key}_{tag}")
    return FusionSplit(t, heldout_root, len(train), len(held), frames_per_sample, stride)


# ------------------------------------------------------------------------------------ labeled rooms


def room_name(path: str | Path) -> str:
    """The scene name of a room path (either layout; see the module doc)."""
    p = Path(path)
    if p.name.endswith(MMDET_SUFFIX):
        return p.name[: -len(MMDET_SUFFIX)]
    return p.name


def read_room(path: str | Path) -> LabeledCloud:
    """One labeled room (ScanNet-20 labels, -1 ignored) from either layout; errors name the path."""
    p = Path(path)
    if p.is_dir() and (p / "coord.npy").is_file():
        return read_pointcept_scene(p, "segment20")
    name = room_name(p)
    folder = p.parent
    if (folder / f"{name}{MMDET_SUFFIX}").is_file():
        return read_scannet_npy(folder, name)
    raise RoomSplitError(
        f"room {path}: neither a Pointcept scene folder (<scene>/coord.npy) nor an mmdetection3d ScanNet "
        f"scene ({folder / (name + MMDET_SUFFIX)} not found); pass e.g. "
        "../shared/data/scannet_pointcept/scene0011_00 or ../shared/data/scannet_scene0000/scene0000_00"
    )


def check_disjoint(train: Sequence[str | Path], test: Sequence[str | Path]) -> None:
    """Raise :class:`RoomSplitError` naming every room that is both a training and a test room."""
    both = sorted({room_name(p) for p in train} & {room_name(p) for p in test})
    if both:
        raise RoomSplitError(
            f"room(s) {', '.join(both)} in both --train-rooms and --test-rooms; a test room must never "
            "be trained on"
        )
    for group, what in ((train, "--train-rooms"), (test, "--test-rooms")):
        names = [room_name(p) for p in group]
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise RoomSplitError(f"{what}: room(s) {dup} listed twice")


def prepare_rooms(train: Sequence[str | Path], test: Sequence[str | Path], root: Path) -> CloudIndex:
    """Write every room once into the labeled-cloud folder ``root`` (reused: rooms already there are
    not converted again). Checks the split first."""
    check_disjoint(train, test)
    index = CloudIndex.open_or_create(root, list(SCANNET20_CLASS_NAMES))
    have = set(index.names())
    added = False
    for path in [*train, *test]:
        name = room_name(path)
        if name not in have:
            log.info("reading room %s", path)
            index.add(name, read_room(path))
            added = True
    if added or not (root / INDEX_JSON).is_file():
        index.write()
    return index
