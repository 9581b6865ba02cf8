"""The CPU kernels' code paths: AVX2 and generic variants give the same bits, voxel reuse along rows,
odd strides, many and empty frames, run-wise scatter, streaming gather, and the large-output cache."""

from __future__ import annotations

import contextlib
import math
import os
import subprocess
import sys

import numpy as np
import pytest
import torch

from pixvox import ops
from pixvox.bench.box_room import make_workload
from pixvox.ops import reference as ref
from pixvox.ops._extension import extension

from ._helpers import random_augmentation, random_depth, random_intrinsics, random_pose, scene_from_points

HAS_AVX2 = extension().cpu_isa() == "avx2"
VARIANTS = ["generic", pytest.param("avx2", marks=pytest.mark.skipif(not HAS_AVX2, reason="CPU has no AVX2"))]


@contextlib.contextmanager
def cpu_variant(name: str):
    previous = extension().set_cpu_isa(name)
    try:
        yield
    finally:
        extension().set_cpu_isa(previous)


@contextlib.contextmanager
def threads(n: int):
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def box_room(frames: int, height: int, width: int, voxel: float = 0.05, seed: int = 0):
    """Smooth depth (walls, floor, ceiling): neighbouring pixels share voxels, as in real frames."""
    w = make_workload(frames, height, width, channels=8, voxel_size=voxel, seed=seed)
    return w.depth, w.K, w.poses, w.frame_batch, w.coords, w.depth_max


def test_unknown_variant_is_refused():
    with pytest.raises(ValueError, match="unknown CPU kernel variant"):
        extension().set_cpu_isa("sse9")
    assert extension().cpu_isa() in ("avx2", "generic")


@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize(("stride", "width"), [(1, 160), (1, 157), (2, 161), (3, 160), (7, 150)])
def test_box_room_matches_reference_exactly(variant, stride, width):
    """Points lie mid-voxel, so every pixel's voxel must equal the reference's; rows reuse voxels."""
    depth, K, poses, fb, coords, depth_max = box_room(3, 96, width)
    K = K.clone()
    scene = ops.VoxelHash(coords)
    with cpu_variant(variant):
        got = ops.pixel_to_voxel(
            depth, K, poses, 0.05, scene, frame_batch=fb, depth_max=depth_max, stride=stride
        )
    want = ref.pixel_to_voxel_reference(
        depth,
        K,
        poses,
        0.05,
        ref.ReferenceVoxelHash(coords),
        frame_batch=fb,
        depth_max=depth_max,
        stride=stride,
    )
    assert torch.equal(got.pixel_bvu, want[0])
    assert torch.equal(got.voxel_index, want[1])
    torch.testing.assert_close(got.points, want[2])
    matched = float((want[1] >= 0).double().mean())
    assert 0.8 < matched < 1.0, matched  # both matched and unmatched (dropped voxels) pixels


@pytest.mark.skipif(not HAS_AVX2, reason="CPU has no AVX2")
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("stride", [1, 2, 5])
def test_avx2_and_generic_pixel_to_voxel_are_bitwise_equal(gen, dtype, stride):
    frames, height, width = 4, 29, 43  # widths that leave a tail of 1-3 columns after groups of 4
    depth = random_depth(gen, frames, height, width, dtype)
    K = random_intrinsics(gen, frames, height, width)
    poses = torch.stack([random_pose(gen) for _ in range(frames)])
    extra = torch.stack([random_augmentation(gen) for _ in range(2)])
    fb = torch.tensor([0, 1, 1, 0])
    points = ref.reference_points_float64(
        depth, K, poses, 0.1, 10.0, stride, extra_transform=extra, frame_batch=fb
    )
    bvu = ref.backproject_reference(depth, K, poses, 0.1, 10.0, stride)[1]
    scene = ops.VoxelHash(scene_from_points(gen, points, fb[bvu[:, 0]], 0.07))
    far = poses.clone()
    far[1, 0, 3] = 3e5  # frame 1 leaves the +-2^20 voxel key range: its pixels match nothing
    runs = {}
    for variant in ("generic", "avx2"):
        with cpu_variant(variant):
            runs[variant] = (
                ops.pixel_to_voxel(
                    depth,
                    K,
                    far,
                    0.07,
                    scene,
                    extra,
                    frame_batch=fb,
                    depth_min=0.1,
                    depth_max=10.0,
                    stride=stride,
                ),
                ops.backproject(depth, K, far, 0.1, 10.0, stride, extra_transform=extra, frame_batch=fb),
            )
    for a, b in zip(runs["generic"], runs["avx2"]):
        for x, y in zip(a, b):
            assert x.dtype == y.dtype and torch.equal(x, y)
    match = runs["avx2"][0]
    assert bool((match.voxel_index[match.pixel_bvu[:, 0] == 1] == -1).all())
    assert bool((match.voxel_index >= 0).any())


@pytest.mark.parametrize("n_threads", [1, 2])
def test_many_and_empty_frames(n_threads):
    depth, K, poses, fb, coords, depth_max = box_room(40, 24, 32, voxel=0.1, seed=1)
    depth[[0, 7, 8, 39]] = 0.0  # empty frames, first, in a pair, and last
    depth[12, :, :] = math.nan
    scene = ops.VoxelHash(coords)
    with threads(n_threads):
        got = ops.pixel_to_voxel(depth, K, poses, 0.1, scene, frame_batch=fb, depth_max=depth_max)
    want = ref.pixel_to_voxel_reference(
        depth, K, poses, 0.1, ref.ReferenceVoxelHash(coords), frame_batch=fb, depth_max=depth_max
    )
    assert torch.equal(got.pixel_bvu, want[0]) and torch.equal(got.voxel_index, want[1])
    assert not bool(torch.isin(got.pixel_bvu[:, 0], torch.tensor([0, 7, 8, 12, 39])).any())


def test_pixel_to_voxel_bitwise_for_any_thread_count_and_variant():
    depth, K, poses, fb, coords, depth_max = box_room(6, 120, 160, voxel=0.025, seed=2)
    scene = ops.VoxelHash(coords)
    outs = []
    for variant in ["generic", *(["avx2"] if HAS_AVX2 else [])]:
        for n in (1, 2):
            with cpu_variant(variant), threads(n):
                outs.append(
                    ops.pixel_to_voxel(depth, K, poses, 0.025, scene, frame_batch=fb, depth_max=depth_max)
                )
    for other in outs[1:]:
        for a, b in zip(outs[0], other):
            assert torch.equal(a, b)


def sequential_sum(feats: np.ndarray, index: np.ndarray, voxels: int) -> np.ndarray:
    """Per voxel, its pixels' rows added one at a time in pixel order (float32), as the kernel must."""
    out = np.zeros((voxels, feats.shape[1]), dtype=feats.dtype)
    for v in range(voxels):
        rows = feats[index == v]
        if len(rows):
            out[v] = np.cumsum(rows, axis=0, dtype=feats.dtype)[-1]
    return out


@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize("channels", [1, 31, 32, 45, 64, 70])
def test_scatter_runs_are_summed_in_pixel_order(gen, variant, channels):
    """Runs of equal voxels (as along image rows), -1 runs, revisited voxels; block and tail channels."""
    runs = torch.randint(1, 9, (500,), generator=gen)
    run_voxel = torch.randint(-1, 40, (500,), generator=gen)
    index = torch.repeat_interleave(run_voxel, runs)
    feats = (torch.randn(index.shape[0], channels, generator=gen) * 10).float()
    want_sum = sequential_sum(feats.numpy(), index.numpy(), 45)
    counts = np.bincount(index.numpy()[index.numpy() >= 0], minlength=45)
    want_mean = want_sum / np.maximum(counts, 1)[:, None].astype(np.float32)
    for n in (1, 2):
        with cpu_variant(variant), threads(n):
            got_sum = ops.scatter_to_voxels(feats, index, 45, "sum")
            got_mean = ops.scatter_to_voxels(feats, index, 45, "mean")
        assert np.array_equal(got_sum.features.numpy(), want_sum)
        assert np.array_equal(got_mean.features.numpy(), want_mean)
        assert np.array_equal(got_sum.counts.numpy(), counts)
    assert bool((got_sum.features[40:] == 0).all())  # voxels without pixels are zero, not stale memory


@pytest.mark.parametrize("variant", VARIANTS)
def test_large_gather_streams_the_same_bits(gen, variant):
    """An output larger than the last-level cache takes the streaming-store path."""
    voxels, channels = 5000, 64
    index = torch.randint(-1, voxels, (200_000,), generator=gen)  # 51 MB of float32 output
    feats = torch.randn(voxels, channels, generator=gen)
    with cpu_variant(variant):
        got = ops.gather_from_voxels(feats, index)
    assert torch.equal(got, ref.gather_from_voxels_reference(feats, index))
    for dtype in (torch.float64, torch.int16):  # 512 B rows; 128 B rows
        f = feats.to(dtype)
        with cpu_variant(variant):
            assert torch.equal(ops.gather_from_voxels(f, index), ref.gather_from_voxels_reference(f, index))
    bad = index.clone()
    bad[123_456] = voxels
    with pytest.raises(IndexError, match=r"voxel_index\[123456\]"):
        ops.gather_from_voxels(feats, bad)


def test_large_outputs_reuse_cached_blocks(gen):
    ext = extension()
    index = torch.randint(-1, 1000, (100_000,), generator=gen)
    feats = torch.randn(1000, 64, generator=gen)  # 25.6 MB gather outputs: large enough for the cache
    first = ops.gather_from_voxels(feats, index)
    second = ops.gather_from_voxels(feats, index)  # first is alive: a different block
    assert first.data_ptr() != second.data_ptr() and torch.equal(first, second)
    before = ext.cpu_cache_stats()
    address = second.data_ptr()
    del second
    assert ext.cpu_cache_stats()["cached_bytes"] >= before["cached_bytes"] + 100_000 * 64 * 4
    third = ops.gather_from_voxels(feats, index.flip(0))
    after = ext.cpu_cache_stats()
    assert after["hits"] == before["hits"] + 1 and third.data_ptr() == address
    assert torch.equal(third, ref.gather_from_voxels_reference(feats, index.flip(0)))
    third.resize_(10, 64)  # cached tensors stay ordinary, resizable tensors
    third.resize_(200_000, 64)
    assert third.shape == (200_000, 64)
    del first, third
    assert ext.release_cached_cpu_memory() > 0
    assert ext.cpu_cache_stats()["cached_bytes"] == 0


def test_cache_limit_zero_keeps_nothing():
    code = (
        "import torch; from pixvox import ops; from pixvox.ops._extension import extension; "
        "x = ops.gather_from_voxels(torch.ones(10, 64), torch.zeros(100_000, dtype=torch.long)); "
        "assert float(x.sum()) == 6.4e6; del x; s = extension().cpu_cache_stats(); "
        "assert s['limit_bytes'] == 0 and s['cached_bytes'] == 0, s; print('ok')"
    )
    env = {**os.environ, "PIXVOX_CPU_CACHE_MB": "0"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=False)
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr
