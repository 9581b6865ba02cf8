"""The bad-input cases: each damages a small copy of real data and runs one real ``pixvox`` command on it.

A case is *clean* when the command (a subprocess) prints no Python traceback and either exits with
status 2 (a :class:`pixvox.errors.UserError`) with a message naming the damaged file, or skips the
damaged item, counts it (a ``skipped`` record in the output, or the preparer's ``failed`` line and
status 1) and names it in the log; and when it leaves no partial output: every file it wrote reads
as its kind, and no index or ``frames.json`` lists the damaged item as good.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from pixvox.bench.faults import inputs as I
from pixvox.bench.faults.runs import finetune_args, pretrain_args


@dataclass
class Context:
    shared: Path  #: ../shared/data
    work: Path  #: scratch folder of the campaign
    refs: dict[str, Path] = field(default_factory=dict)  #: reference runs/data of the kill campaign


@dataclass
class Setup:
    args: list[str]  #: the ``pixvox`` command
    named: Path  #: the damaged file (or folder) the message must name
    outputs: list[Path]  #: folders the command writes
    accepted: Callable[[], bool] = lambda: False  #: whether an output lists the damaged item as good


@dataclass
class Case:
    input_class: str
    reader: str
    build: Callable[[Path, Context], Setup]
    needs: tuple[str, ...] = ()  #: keys of Context.refs


def read_json(path: Path) -> Any:
    return json.loads(path.read_text()) if path.is_file() else {}


def _frames_listed(scene: Path, frame: int) -> Callable[[], bool]:
    return lambda: frame in read_json(scene / "frames.json").get("frames", [])


def _fusion_listed(root: Path, frame: int) -> Callable[[], bool]:
    return lambda: any(
        s["source"].endswith(f"frames {frame}") for s in read_json(root / "index.json").get("samples", [])
    )


def _cloud_listed(root: Path, scene: str) -> Callable[[], bool]:
    return lambda: any(s["name"] == scene for s in read_json(root / "index.json").get("scenes", []))


# ---------------------------------------------------------------------- RGB-D frames
def _sequence(damage: Callable[[Path], Any], frame: int = 1) -> Callable[[Path, Context], Setup]:
    def build(tmp: Path, ctx: Context) -> Setup:
        seq = I.icl_sequence(ctx.shared, tmp / "icl")
        named = damage(seq)
        out = tmp / "exported"
        return Setup(
            ["prep", "sequence", "--input", str(seq), "--out", str(out)],
            named,
            [out],
            _frames_listed(out, frame),
        )

    return build


def _fusions(damage: Callable[[Path], Any], frame: int = 1) -> Callable[[Path, Context], Setup]:
    def build(tmp: Path, ctx: Context) -> Setup:
        scene = tmp / "frames" / "icl"
        shutil.copytree(ctx.refs["frames"], scene)
        named = damage(scene)
        out = tmp / "fusions"
        args = [
            "prep",
            "fusions",
            "--frames",
            str(tmp / "frames"),
            "--out",
            str(out),
            "--voxel-size",
            "0.05",
            "--no-progress",
        ]
        return Setup(args, named, [out], _fusion_listed(out, frame))

    return build


def _sens(damage: Callable[[list, Path], Any], frame: int = 1) -> Callable[[Path, Context], Setup]:
    def build(tmp: Path, ctx: Context) -> Setup:
        frames = I.scannet_frames(ctx.shared)
        path = tmp / "scans" / "scene0378_00" / "scene0378_00.sens"
        damage(frames, path)
        if not path.exists():
            I.write_sens(path, frames, I.scannet_intrinsics(ctx.shared))
        out = tmp / "exported"
        args = [
            "prep",
            "scannet",
            "frames",
            "--scans",
            str(tmp / "scans"),
            "--out",
            str(out),
            "--frame-skip",
            "1",
        ]
        return Setup(args, path, [out], _frames_listed(out / "scene0378_00", frame))

    return build


_K = np.array([[574.54, 0, 322.52], [0, 577.58, 238.56], [0, 0, 1.0]])  # scene0378_00's intrinsic.txt


def _truncated_sens(frames: list, path: Path) -> None:
    I.write_sens(path, frames, _K)
    I.truncate(path, 0.6)


def _nan_pose_sens(frames: list, path: Path) -> None:
    frames[1] = (frames[1][0], frames[1][1], np.full((4, 4), -np.inf))  # ScanNet's mark of lost tracking


def _corrupt_jpeg_sens(frames: list, path: Path) -> None:
    frames[1] = (frames[1][0][:200] + bytes(range(256)) * 8, frames[1][1], frames[1][2])


def _icl(kind: str, frame: int = 1) -> Callable[[Path], Path]:
    def damage(seq: Path) -> Path:
        color, depth = seq / "image" / f"{frame:05d}.jpg", seq / "depth" / f"{frame:05d}.png"
        if kind == "jpeg":
            return I.garble(color, 0.02, 20000)
        if kind == "png":
            return I.truncate(depth, 0.4)
        if kind == "depth8":
            return I.depth_as_8bit(depth)
        if kind == "empty":
            color.write_bytes(b"")
            return color
        log = seq / "trajectory.log"
        lines = log.read_text().splitlines()
        row = 5 * frame + 1  # first matrix row of the frame's entry
        vals = lines[row].split()
        lines[row] = (
            " ".join(["nan", *vals[1:]])
            if kind == "nan"
            else " ".join(str(2 * float(v)) for v in vals[:3]) + " " + vals[3]
        )
        log.write_text("\n".join(lines) + "\n")
        return log

    return damage


def _exported(kind: str, frame: int = 1) -> Callable[[Path], Path]:
    def damage(scene: Path) -> Path:
        name = f"{frame:06d}"
        if kind == "jpeg":
            return I.garble(scene / "color" / f"{name}.jpg", 0.02, 20000)
        if kind == "png":
            return I.truncate(scene / "depth" / f"{name}.png", 0.4)
        if kind == "depth8":
            return I.depth_as_8bit(scene / "depth" / f"{name}.png")
        if kind == "zero_depth":
            return I.zero_depth(scene / "depth" / f"{name}.png")
        pose = scene / "pose" / f"{name}.txt"
        m = np.loadtxt(pose)
        if kind == "nan":
            m[0, 3] = np.nan
        else:
            m[:3, :3] *= 2.0  # a scaled rotation: not rigid
        np.savetxt(pose, m)
        return pose

    return damage


# ---------------------------------------------------------------------- labeled clouds
def _pointcept(damage: Callable[[Path], Path]) -> Callable[[Path, Context], Setup]:
    def build(tmp: Path, ctx: Context) -> Setup:
        root = I.pointcept_scenes(ctx.shared, tmp / "pointcept")
        named = damage(root / "scene0011_00")
        runs = tmp / "runs"
        args = finetune_args(root, None, runs, "pc", 2, 2, **{
            "data.train.include": "[scene0011_00]", "data.val.include": "[scene0025_00]", "data.voxel_size": "0.1"})  # fmt: skip
        return Setup(args, named, [runs])

    return build


def _short(field: str) -> Callable[[Path], Path]:
    def damage(scene: Path) -> Path:
        p = scene / f"{field}.npy"
        np.save(p, np.load(p)[:-7])
        return p

    return damage


def _fractional_labels(scene: Path) -> Path:
    p = scene / "segment20.npy"
    np.save(p, np.load(p).astype(np.float32) + 0.5)
    return p


def _mmdet(damage: Callable[[Path], Path], via: str) -> Callable[[Path, Context], Setup]:
    def build(tmp: Path, ctx: Context) -> Setup:
        src = I.mmdet_scene(ctx.shared, tmp / "mmdet")
        named = damage(src)
        out = tmp / "clouds"
        if via == "prep":
            return Setup(["prep", "scannet", "npy-clouds", "--src", str(src), "--out", str(out)], named, [out],
                         _cloud_listed(out, "scene0000_00"))  # fmt: skip
        runs = tmp / "runs"
        args = finetune_args(out, None, runs, "mm", 2, 2, **{
            "data.scannet_npy": str(src), "data.train.include": "[scene0000_00]", "data.val.include": "[scene0000_00]"})  # fmt: skip
        return Setup(args, named, [out, runs], _cloud_listed(out, "scene0000_00"))

    return build


def _mm_short_labels(src: Path) -> Path:
    p = src / "scene0000_00_sem_label_all.npy"
    np.save(p, np.load(p)[:-7])
    return p


def _mm_float_labels(src: Path) -> Path:
    p = src / "scene0000_00_sem_label_all.npy"
    np.save(p, np.load(p).astype(np.float64) + 0.5)
    return p


def _ply(drop: str | None, labels: bool = True) -> Callable[[Path, Context], Setup]:
    def build(tmp: Path, ctx: Context) -> Setup:
        scans = I.ply_scan(ctx.shared, tmp / "scans", drop=drop, labels=labels)
        scene = scans / "scene0000_00"
        named = scene / ("scene0000_00_vh_clean_2.ply" if drop else "scene0000_00_vh_clean_2.labels.ply")
        out = tmp / "clouds"
        return Setup(["prep", "scannet", "clouds", "--scans", str(scans), "--out", str(out)], named, [out],
                     _cloud_listed(out, "scene0000_00"))  # fmt: skip

    return build


# ---------------------------------------------------------------------- jobs: data, configs, checkpoints
def _fusion_sample(damage: Callable[[Path], Path]) -> Callable[[Path, Context], Setup]:
    def build(tmp: Path, ctx: Context) -> Setup:
        root = tmp / "fusions"
        shutil.copytree(ctx.refs["fusions"], root)
        named = damage(sorted((root / "samples").glob("*.npz"))[0])
        runs = tmp / "runs"
        return Setup(pretrain_args(root, runs, "bad", 2, 2, **{"train.batch_size": "12"}), named, [runs])

    return build


def _depths_float(path: Path) -> Path:
    with np.load(path) as z:
        arrays = {k: z[k] for k in z.files}
    arrays["depths"] = arrays["depths"].astype(np.float32) / 1000.0
    np.savez(path, **arrays)
    return path


def _unknown_key(job: str) -> Callable[[Path, Context], Setup]:
    def build(tmp: Path, ctx: Context) -> Setup:
        cfg = tmp / "bad.yaml"
        base = "configs/pretrain/quickstart.yaml" if job == "pretrain" else "configs/finetune/synthetic.yaml"
        from pixvox.bench.faults.runs import REPO

        cfg.write_text(f"_base_: {REPO / base}\ntrain:\n  max_step: 10\n")
        return Setup([job, str(cfg), f"experiment.output_root={tmp / 'runs'}"], cfg, [tmp / "runs"])

    return build


def _unknown_override(tmp: Path, ctx: Context) -> Setup:
    args = pretrain_args(ctx.refs["fusions"], tmp / "runs", "x", 2, 2, **{"trian.max_steps": "3"})
    return Setup(args, Path("trian"), [tmp / "runs"])  # the message names the unknown section


def _other_architecture_init(tmp: Path, ctx: Context) -> Setup:
    ck = sorted((ctx.refs["pretrain"] / "checkpoints").glob("step_*.pt"))[-1]
    runs = tmp / "runs"
    args = finetune_args(ctx.refs["clouds"], ck, runs, "arch", 2, 2, **{"student.name": "Res16UNet34C"})
    return Setup(args, ck, [runs])


def _other_architecture_resume(tmp: Path, ctx: Context) -> Setup:
    ck = sorted((ctx.refs["pretrain"] / "checkpoints").glob("step_*.pt"))[-1]
    runs = tmp / "runs"
    args = pretrain_args(ctx.refs["fusions"], runs, "arch", 2, 2, **{"student.name": "Res16UNet14T"})
    return Setup([*args, "--resume", f"force:{ck}"], ck, [runs])


def _truncated_checkpoint(tmp: Path, ctx: Context) -> Setup:
    runs = tmp / "runs"
    shutil.copytree(ctx.refs["pretrain"], runs / "trunc")
    last = sorted((runs / "trunc" / "checkpoints").glob("step_*.pt"))[-1]
    I.truncate(last, 0.5)
    steps = int(last.stem.split("_")[1])
    args = pretrain_args(ctx.refs["fusions"], runs, "trunc", steps + 2, 2)
    return Setup([*args, "--resume", "auto"], last, [])


CASES: list[Case] = [
    Case("truncated .sens", "pixvox prep scannet frames", _sens(_truncated_sens)),
    Case("corrupt JPEG", "pixvox prep scannet frames (.sens color)", _sens(_corrupt_jpeg_sens)),
    Case("corrupt JPEG", "pixvox prep sequence", _sequence(_icl("jpeg"))),
    Case("corrupt JPEG", "pixvox prep fusions", _fusions(_exported("jpeg")), ("frames",)),
    Case("corrupt PNG", "pixvox prep sequence", _sequence(_icl("png"))),
    Case("corrupt PNG", "pixvox prep fusions", _fusions(_exported("png")), ("frames",)),
    Case("8-bit depth PNG", "pixvox prep sequence", _sequence(_icl("depth8"))),
    Case("8-bit depth PNG", "pixvox prep fusions", _fusions(_exported("depth8")), ("frames",)),
    Case("NaN pose", "pixvox prep scannet frames (.sens pose)", _sens(_nan_pose_sens)),
    Case("NaN pose", "pixvox prep sequence", _sequence(_icl("nan"))),
    Case("NaN pose", "pixvox prep fusions", _fusions(_exported("nan")), ("frames",)),
    Case("non-rigid pose", "pixvox prep sequence", _sequence(_icl("scaled"))),
    Case("non-rigid pose", "pixvox prep fusions", _fusions(_exported("scaled")), ("frames",)),
    Case("empty frame (0-byte color file)", "pixvox prep sequence", _sequence(_icl("empty"))),
    Case("empty frame (no valid depth)", "pixvox prep fusions", _fusions(_exported("zero_depth")), ("frames",)),
    Case("mismatched lengths, Pointcept", "pixvox finetune (data.root=Pointcept)", _pointcept(_short("color"))),
    Case("mismatched lengths, mmdetection3d", "pixvox prep scannet npy-clouds", _mmdet(_mm_short_labels, "prep")),
    Case("mismatched lengths, mmdetection3d", "pixvox finetune (data.scannet_npy)", _mmdet(_mm_short_labels, "job")),
    Case("wrong dtype (fractional labels), Pointcept", "pixvox finetune (data.root=Pointcept)", _pointcept(_fractional_labels)),
    Case("wrong dtype (fractional labels), mmdetection3d", "pixvox prep scannet npy-clouds", _mmdet(_mm_float_labels, "prep")),
    Case("wrong dtype (float depths), fusion sample", "pixvox pretrain", _fusion_sample(_depths_float), ("fusions",)),
    Case("truncated fusion sample", "pixvox pretrain", _fusion_sample(lambda p: I.truncate(p, 0.5)), ("fusions",)),
    Case("missing PLY properties (no colors)", "pixvox prep scannet clouds", _ply("red")),
    Case("missing PLY properties (no labels)", "pixvox prep scannet clouds", _ply(None, labels=False)),
    Case("unknown config key (YAML)", "pixvox pretrain", _unknown_key("pretrain")),
    Case("unknown config key (YAML)", "pixvox finetune", _unknown_key("finetune")),
    Case("unknown config key (override)", "pixvox pretrain", _unknown_override, ("fusions",)),
    Case("checkpoint of another architecture", "pixvox finetune (init.checkpoint)", _other_architecture_init, ("pretrain", "clouds")),
    Case("checkpoint of another architecture", "pixvox pretrain (--resume force:PATH)", _other_architecture_resume, ("pretrain", "fusions")),
    Case("truncated checkpoint", "pixvox pretrain (--resume auto)", _truncated_checkpoint, ("pretrain", "fusions")),
]  # fmt: skip
