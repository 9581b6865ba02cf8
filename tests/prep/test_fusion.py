"""Voxelized RGB-D fusions: values against an independent float64 reference, resizing geometry,
skips with reasons, resume after SIGKILL equal to an uninterrupted run."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from pixvox.io.frames import FrameSequence, FrameWriter, RGBDFrame
from pixvox.io.fusions import FusionIndex
from pixvox.prep.fusion import fuse_frames, make_fusions, plan_samples

REPO = Path(__file__).resolve().parents[2]


def reference_fusion(frames, voxel_size, depth_min, depth_max):
    """Brute-force float64 fusion: per pixel, back-project, floor, accumulate color in a dict."""
    acc = defaultdict(lambda: np.zeros(4))
    for f in frames:
        K, T = f.intrinsics, f.cam_to_world
        for v in range(f.depth_mm.shape[0]):
            for u in range(f.depth_mm.shape[1]):
                z = f.depth_mm[v, u] / 1000.0
                if not (z > 0 and z > depth_min and z <= depth_max):
                    continue
                p = np.array([(u - K[0, 2]) * z / K[0, 0], (v - K[1, 2]) * z / K[1, 1], z])
                w = T[:3, :3] @ p + T[:3, 3]
                key = tuple(np.floor(w / voxel_size).astype(int))
                acc[key][:3] += f.color[v, u]
                acc[key][3] += 1
    keys = sorted(acc)
    coords = np.array(keys, dtype=np.int32).reshape(-1, 3)
    colors = np.array([np.round(acc[k][:3] / acc[k][3]) for k in keys]).reshape(-1, 3)
    return coords, colors


def random_frames(rng, F, H=12, W=16):
    frames = []
    for i in range(F):
        T = np.eye(4)
        T[:3, :3] = Rotation.from_euler("xyz", rng.uniform(-0.3, 0.3, 3)).as_matrix()
        T[:3, 3] = rng.uniform(-1, 1, 3)
        depth = rng.integers(300, 4000, (H, W)).astype(np.uint16)
        depth[rng.random((H, W)) < 0.2] = 0
        K = np.array(
            [[rng.uniform(10, 20), 0, W / 2 - 0.5], [0, rng.uniform(10, 20), H / 2 - 0.5], [0, 0, 1]]
        )
        frames.append(RGBDFrame(i, rng.integers(0, 256, (H, W, 3)).astype(np.uint8), depth, T, K))
    return frames


def test_fuse_frames_matches_reference(seed):
    rng = np.random.default_rng(seed)
    frames = random_frames(rng, int(rng.integers(1, 4)))
    vs = float(rng.uniform(0.02, 0.2))
    coords, colors, n = fuse_frames(frames, vs, 0.5, 3.5)
    ref_c, ref_rgb = reference_fusion(frames, vs, 0.5, 3.5)
    np.testing.assert_array_equal(coords, ref_c)
    np.testing.assert_array_equal(colors, ref_rgb)
    assert n == sum(int(((f.depth_mm > 500) & (f.depth_mm <= 3500)).sum()) for f in frames)


def test_plan_samples():
    assert plan_samples(list(range(7)), 3, 3) == [[0, 1, 2], [3, 4, 5]]
    assert plan_samples([0, 5, 10, 15], 2, 1) == [[0, 5], [5, 10], [10, 15]]
    assert plan_samples([1], 2, 1) == []


def test_multi_frame_samples_against_reference(synthetic_small, tmp_path):
    s = make_fusions(
        synthetic_small / "frames", tmp_path / "f", frames_per_sample=3, stride=2, progress=False
    )
    idx = FusionIndex.load(tmp_path / "f")
    assert idx.frames_per_sample == 3 and s["samples"] == len(idx) == 2 * 4  # starts 0, 2, 4, 6 of 10 frames
    assert [r.name for r in idx.samples][:2] == ["synth0000_000000", "synth0000_000002"]
    rec = idx.samples[1]
    sample = idx.load_sample(1)
    idx.verify(1)
    seq = FrameSequence(synthetic_small / "frames" / "synth0000")
    frames = [seq.read(i) for i in (2, 3, 4)]
    ref_c, ref_rgb = reference_fusion(frames, 0.025, 0.1, 10.0)
    np.testing.assert_array_equal(sample.coords, ref_c)
    np.testing.assert_array_equal(sample.colors, ref_rgb)
    np.testing.assert_array_equal(sample.depths, np.stack([f.depth_mm for f in frames]))
    np.testing.assert_array_equal(sample.cam_to_world, np.stack([f.cam_to_world for f in frames]))
    assert rec.source == "synth0000 frames 2,3,4" and rec.num_voxels == len(ref_c)


def test_downscaled_images_stay_consistent_with_voxels(synthetic_small, tmp_path):
    # Downscaling by an odd factor (3) puts every small pixel centre on a full-resolution pixel
    # centre, so nearest-neighbour depth plus scaled intrinsics must reproduce full-resolution points
    # exactly: each back-projected small pixel lands in one of the sample's voxels.
    make_fusions(
        synthetic_small / "frames", tmp_path / "f", image_size=(32, 48), max_samples=3, progress=False
    )
    idx = FusionIndex.load(tmp_path / "f")
    seq = FrameSequence(synthetic_small / "frames" / "synth0000")
    assert len(idx) == 3
    for i in range(len(idx)):
        s = idx.load_sample(i)
        assert s.images.shape == (1, 32, 48, 3) and s.depths.shape == (1, 32, 48)
        np.testing.assert_array_equal(s.depths[0], seq.read(i).depth_mm[1::3, 1::3])
        f = RGBDFrame(0, s.images[0], s.depths[0], s.cam_to_world[0], s.intrinsics[0].astype(np.float64))
        small, _, _ = fuse_frames([f], s.voxel_size, 0.1, 10.0)
        voxels = {tuple(c) for c in s.coords}
        inside = np.mean([tuple(c) in voxels for c in small])
        assert inside > 0.999, inside


def test_skips_are_counted_with_reasons(synthetic_small, tmp_path):
    frames = tmp_path / "frames"
    shutil.copytree(synthetic_small / "frames" / "synth0000", frames / "good")
    shutil.copytree(synthetic_small / "frames" / "synth0000", frames / "partial")
    (frames / "partial" / "frames.json").unlink()  # an interrupted export
    (frames / "good" / "color" / "000004.jpg").write_bytes(b"\xff\xd8 broken jpeg")
    w = FrameWriter(frames / "nodepth", source="t", intrinsics=np.eye(3))
    w.add(0, np.zeros((8, 8, 3), np.uint8), np.zeros((8, 8), np.uint16), np.eye(4))
    w.finish()
    s = make_fusions(frames, tmp_path / "f", progress=False)
    reasons = {Path(x["input"]).name: x["reason"] for x in s["skipped"]}
    assert s["samples"] == 9
    assert "incomplete export" in reasons["partial"]
    assert "000004.jpg" in reasons["good_000004"]
    assert "no depth" in reasons["nodepth_000000"]
    assert str(frames / "nodepth" / "depth" / "000000.png") in reasons["nodepth_000000"]  # names the file
    assert json.loads((tmp_path / "f" / "index.json").read_text())["skipped"] == s["skipped"]


def test_rerun_reuses_and_options_are_guarded(synthetic_small, tmp_path):
    a = make_fusions(synthetic_small / "frames", tmp_path / "f", max_samples=4, progress=False)
    first = (tmp_path / "f" / "index.json").read_text()
    b = make_fusions(synthetic_small / "frames", tmp_path / "f", max_samples=4, progress=False)
    assert (a["new"], b["new"], b["reused"]) == (4, 0, 4)
    assert json.loads((tmp_path / "f" / "index.json").read_text())["samples"] == json.loads(first)["samples"]
    more = make_fusions(synthetic_small / "frames", tmp_path / "f", max_samples=6, progress=False)
    assert (more["new"], more["reused"]) == (2, 4)
    with pytest.raises(FileNotFoundError, match="no exported scenes"):
        make_fusions(tmp_path / "f" / "samples", tmp_path / "g", progress=False)
    with pytest.raises(FileExistsError, match="options"):
        make_fusions(
            synthetic_small / "frames", tmp_path / "f", max_samples=4, voxel_size=0.05, progress=False
        )
    c = make_fusions(
        synthetic_small / "frames",
        tmp_path / "f",
        max_samples=4,
        voxel_size=0.05,
        overwrite=True,
        progress=False,
    )
    assert c["new"] == 4 and FusionIndex.load(tmp_path / "f").voxel_size == 0.05


@pytest.fixture(scope="module")
def frames_for_kill(tmp_path_factory) -> Path:
    from pixvox.prep.synthetic import generate

    out = tmp_path_factory.mktemp("kill")
    generate(
        out,
        num_scenes=1,
        frames_per_scene=40,
        seed=11,
        image_size=(120, 160),
        points_per_m2=20,
        progress=False,
    )
    return out / "frames"


def test_sigkill_then_rerun_equals_uninterrupted_run(frames_for_kill, tmp_path):
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(REPO / "src"), str(REPO)]),
        "OPENBLAS_NUM_THREADS": "1",
    }
    killed = tmp_path / "killed"
    cmd = [
        sys.executable,
        str(REPO / "data_prep" / "make_fusions.py"),
        "--frames",
        str(frames_for_kill),
        "--out",
        str(killed),
        "--no-progress",
    ]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and proc.poll() is None:
            if (killed / "samples").is_dir() and len(list((killed / "samples").glob("*.npz"))) >= 3:
                break
            time.sleep(0.002)
        assert proc.poll() is None, "the job finished before it could be killed"
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    done_before = len(list((killed / "samples").glob("*.npz")))
    assert 3 <= done_before < 40 and not (killed / "index.json").exists()
    rerun = make_fusions(frames_for_kill, killed, progress=False)
    assert rerun["reused"] == done_before and rerun["new"] == 40 - done_before
    make_fusions(frames_for_kill, tmp_path / "clean", progress=False)
    a = json.loads((killed / "index.json").read_text())
    b = json.loads((tmp_path / "clean" / "index.json").read_text())
    assert len(b["samples"]) == 40
    assert a["samples"] == b["samples"]  # same names, voxel counts and sha256 of every file
    assert sorted(p.name for p in (killed / "samples").iterdir()) == [
        f"{r['name']}.npz" for r in b["samples"]
    ]
