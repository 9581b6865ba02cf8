"""Small, real inputs for the bad-input cases, copied from ``../shared/data`` into a temporary folder.

Nothing here writes into the shared data: every builder copies a few frames or a subsample of a
scan into ``dst`` and returns the paths the cases then damage. :func:`write_sens` writes a ScanNet
``.sens`` stream field by field from its published layout (see pixvox.prep.scannet.sens) from real
ScanNet frames, since the shared data hold ScanNet frames but no ``.sens`` file.
"""

from __future__ import annotations

import io
import shutil
import struct
import zlib
from pathlib import Path

import numpy as np
from PIL import Image

ICL = "icl_livingroom1"
SCANNET_EXPORT = "scannet_scene0378_00"
POINTCEPT = "scannet_pointcept"
MMDET = "scannet_scene0000"


def icl_sequence(shared: Path, dst: Path, frames: int = 4) -> Path:
    """The first ``frames`` frames of ICL-NUIM living room 1 (Redwood layout: image/, depth/,
    trajectory.log, camera_primesense.json)."""
    src = shared / ICL
    (dst / "image").mkdir(parents=True)
    (dst / "depth").mkdir()
    for k in range(frames):
        shutil.copy(src / "image" / f"{k:05d}.jpg", dst / "image")
        shutil.copy(src / "depth" / f"{k:05d}.png", dst / "depth")
    lines = (src / "trajectory.log").read_text().splitlines()
    (dst / "trajectory.log").write_text("\n".join(lines[: 5 * frames]) + "\n")
    shutil.copy(src / "camera_primesense.json", dst)
    return dst


def scannet_frames(shared: Path, frames: int = 3) -> list[tuple[bytes, np.ndarray, np.ndarray]]:
    """(JPEG bytes, uint16 depth mm [480, 640], 4x4 camera-to-world) of ScanNet scene0378_00's first frames."""
    from pixvox.prep.sequence.layouts import load_layout

    layout = load_layout(shared / SCANNET_EXPORT)
    out = []
    for f in layout.frames[:frames]:
        depth = np.asarray(Image.open(f.depth), dtype=np.uint16)
        out.append((Path(f.color).read_bytes(), depth, np.asarray(f.pose, dtype=np.float64)))
    return out


def scannet_intrinsics(shared: Path) -> np.ndarray:
    return np.loadtxt(shared / SCANNET_EXPORT / "intrinsic.txt")[:3, :3]


def write_sens(path: Path, frames: list[tuple[bytes, np.ndarray, np.ndarray]], K: np.ndarray) -> Path:
    """A version-4 ``.sens`` file: JPEG color, zlib uint16 depth (shift 1000 per metre), poses as given."""

    def mat(m) -> bytes:
        return np.asarray(m, dtype="<f4").reshape(16).tobytes()

    K4 = np.eye(4)
    K4[:3, :3] = K
    h, w = frames[0][1].shape
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as f:
        name = b"StructureSensor"
        f.write(struct.pack("<I", 4) + struct.pack("<Q", len(name)) + name)
        f.write(mat(K4) + mat(np.eye(4)) + mat(K4) + mat(np.eye(4)))
        f.write(struct.pack("<ii", 2, 1) + struct.pack("<4I", w, h, w, h) + struct.pack("<f", 1000.0))
        f.write(struct.pack("<Q", len(frames)))
        for i, (jpeg, depth, pose) in enumerate(frames):
            d = zlib.compress(depth.astype("<u2").tobytes())
            f.write(mat(pose) + struct.pack("<QQQQ", 1000 * i, 1000 * i, len(jpeg), len(d)) + jpeg + d)
    return path


def pointcept_scenes(shared: Path, dst: Path, points: int = 20000) -> Path:
    """Two Pointcept-layout scenes (coord, color, segment20), each a seeded ``points`` subsample."""
    rng = np.random.default_rng(0)
    for name in ("scene0011_00", "scene0025_00"):
        src = shared / POINTCEPT / name
        n = len(np.load(src / "coord.npy", mmap_mode="r"))
        keep = np.sort(rng.choice(n, min(points, n), replace=False))
        (dst / name).mkdir(parents=True)
        for field in ("coord", "color", "segment20"):
            np.save(dst / name / f"{field}.npy", np.load(src / f"{field}.npy")[keep])
    return dst


def mmdet_scene(shared: Path, dst: Path, points: int = 20000) -> Path:
    """mmdetection3d's arrays of ScanNet scene0000_00 (``_vert_all``, ``_sem_label_all``), subsampled."""
    rng = np.random.default_rng(0)
    dst.mkdir(parents=True)
    vert = np.load(shared / MMDET / "scene0000_00_vert_all.npy")
    keep = np.sort(rng.choice(len(vert), min(points, len(vert)), replace=False))
    np.save(dst / "scene0000_00_vert_all.npy", vert[keep])
    np.save(
        dst / "scene0000_00_sem_label_all.npy",
        np.load(shared / MMDET / "scene0000_00_sem_label_all.npy")[keep],
    )
    return dst


def ply_scan(
    shared: Path, dst: Path, points: int = 5000, drop: str | None = None, labels: bool = True
) -> Path:
    """A ScanNet scan folder (``<scene>_vh_clean_2.ply`` + ``.labels.ply``, vertices only) from the real
    scene0000 vertices; ``drop`` leaves that vertex property out of the mesh file."""
    from plyfile import PlyData, PlyElement

    rng = np.random.default_rng(0)
    vert = np.load(shared / MMDET / "scene0000_00_vert_all.npy")
    nyu = np.load(shared / MMDET / "scene0000_00_sem_label_all.npy")
    keep = np.sort(rng.choice(len(vert), points, replace=False))
    vert, nyu = vert[keep], nyu[keep]
    fields = [("x", "f4"), ("y", "f4"), ("z", "f4"), ("red", "u1"), ("green", "u1"), ("blue", "u1")]
    fields = [f for f in fields if f[0] != drop]
    arr = np.empty(points, dtype=fields)
    for i, name in enumerate(("x", "y", "z", "red", "green", "blue")):
        if name != drop:
            arr[name] = vert[:, i]
    scene = dst / "scene0000_00"
    scene.mkdir(parents=True)
    PlyData([PlyElement.describe(arr, "vertex")]).write(str(scene / "scene0000_00_vh_clean_2.ply"))
    lab = np.empty(
        points, dtype=[("x", "f4"), ("y", "f4"), ("z", "f4"), *([("label", "u2")] if labels else [])]
    )
    for i, name in enumerate("xyz"):
        lab[name] = vert[:, i]
    if labels:
        lab["label"] = nyu
    PlyData([PlyElement.describe(lab, "vertex")]).write(str(scene / "scene0000_00_vh_clean_2.labels.ply"))
    return dst


# ---------------------------------------------------------------------- damage
def truncate(path: Path, fraction: float = 0.5) -> Path:
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * fraction)])
    return path


def garble(path: Path, start: float = 0.3, length: int = 4096) -> Path:
    """Overwrite ``length`` bytes from ``start`` (a fraction of the size) with a fixed noise pattern."""
    data = bytearray(path.read_bytes())
    at = int(len(data) * start)
    noise = np.random.default_rng(1).integers(0, 256, length, dtype=np.uint8).tobytes()
    data[at : at + length] = noise[: max(0, min(length, len(data) - at))]
    path.write_bytes(bytes(data))
    return path


def depth_as_8bit(path: Path) -> Path:
    """Rewrite a 16-bit depth PNG as an 8-bit one (values / 256), as an image editor's export would."""
    d = np.asarray(Image.open(path), dtype=np.uint16)
    Image.fromarray((d >> 8).astype(np.uint8), "L").save(path)
    return path


def zero_depth(path: Path) -> Path:
    d = np.asarray(Image.open(path), dtype=np.uint16)
    buf = io.BytesIO()
    Image.fromarray(np.zeros_like(d)).save(buf, format="PNG")
    path.write_bytes(buf.getvalue())
    return path
