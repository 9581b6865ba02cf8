"""Fusion samples and index: exact round trips, validation errors naming the file, checksums."""

from __future__ import annotations

import json

import numpy as np
import pytest

from pixvox.io.fusions import (
    FusionFormatError,
    FusionIndex,
    FusionRecord,
    FusionSample,
    load_fusion_sample,
    write_fusion_sample,
)


def random_sample(rng: np.random.Generator, F: int = 2, V: int = 50, H: int = 6, W: int = 8) -> FusionSample:
    return FusionSample(
        coords=rng.integers(-100, 100, (V, 3)).astype(np.int32),
        colors=rng.integers(0, 256, (V, 3)).astype(np.uint8),
        images=rng.integers(0, 256, (F, H, W, 3)).astype(np.uint8),
        depths=rng.integers(0, 65536, (F, H, W)).astype(np.uint16),
        intrinsics=rng.normal(size=(F, 3, 3)).astype(np.float32),
        cam_to_world=rng.normal(size=(F, 4, 4)),
        voxel_size=float(rng.uniform(0.01, 0.1)),
    )


def test_round_trip_exact(tmp_path, seed):
    rng = np.random.default_rng(seed)
    s = random_sample(rng, F=int(rng.integers(1, 4)), V=int(rng.integers(1, 500)))
    write_fusion_sample(tmp_path / "a.npz", s)
    t = load_fusion_sample(tmp_path / "a.npz")
    for k, v in s.arrays().items():
        got = t.arrays()[k]
        assert got.dtype == v.dtype
        np.testing.assert_array_equal(got, v)


@pytest.mark.parametrize(
    "mutate, message",
    [
        (lambda a: a.pop("depths"), "missing keys"),
        (lambda a: a.__setitem__("coords", a["coords"].astype(np.int64)), "dtype"),
        (lambda a: a.__setitem__("colors", a["colors"][:-1]), "shape"),
        (lambda a: a.__setitem__("depths", a["depths"][:, :-1]), "shape"),
        (lambda a: a.__setitem__("cam_to_world", a["cam_to_world"][:1]), "shape"),
        (lambda a: a.__setitem__("voxel_size", np.asarray(-1.0)), "voxel_size"),
    ],
)
def test_invalid_samples_name_the_file(tmp_path, seed, mutate, message):
    rng = np.random.default_rng(seed)
    arrays = random_sample(rng).arrays()
    mutate(arrays)
    np.savez(tmp_path / "bad.npz", **arrays)
    with pytest.raises(FusionFormatError, match=f"bad.npz.*{message}|{message}.*bad.npz"):
        load_fusion_sample(tmp_path / "bad.npz")


def test_writer_refuses_invalid(tmp_path, seed):
    s = random_sample(np.random.default_rng(seed))
    s.coords = s.coords.astype(np.float32)
    with pytest.raises(FusionFormatError):
        write_fusion_sample(tmp_path / "a.npz", s)
    assert not (tmp_path / "a.npz").exists()


def test_corrupt_and_missing_files(tmp_path, seed):
    write_fusion_sample(tmp_path / "a.npz", random_sample(np.random.default_rng(seed)))
    data = (tmp_path / "a.npz").read_bytes()
    (tmp_path / "cut.npz").write_bytes(data[: len(data) // 2])
    with pytest.raises(FusionFormatError, match="cut.npz"):
        load_fusion_sample(tmp_path / "cut.npz")
    with pytest.raises(FusionFormatError, match="nope.npz"):
        load_fusion_sample(tmp_path / "nope.npz")


def test_index_round_trip_and_verify(tmp_path, seed):
    rng = np.random.default_rng(seed)
    (tmp_path / "samples").mkdir()
    records = []
    for name in ("b", "a"):
        s = random_sample(rng)
        sha = write_fusion_sample(tmp_path / "samples" / f"{name}.npz", s)
        records.append(FusionRecord(name, f"samples/{name}.npz", s.num_voxels, s.num_frames, sha, "src"))
    idx = FusionIndex(
        tmp_path, 0.025, 2, records, [{"input": "x", "reason": "y"}], extra={"options": {"k": 1}}
    )
    idx.write()
    d = json.loads((tmp_path / "index.json").read_text())
    assert d["format"] == "pixvox.fusions" and d["version"] == 1 and d["frames_per_sample"] == 2
    assert [s["name"] for s in d["samples"]] == ["a", "b"]
    back = FusionIndex.load(tmp_path)
    assert back.samples == idx.samples and back.skipped == idx.skipped and back.extra == {"options": {"k": 1}}
    for i in range(len(back)):
        back.verify(i)
        assert back.load_sample(i).num_voxels == back.samples[i].num_voxels
    # A changed file no longer matches its checksum.
    s = random_sample(rng)
    write_fusion_sample(tmp_path / "samples" / "a.npz", s)
    with pytest.raises(FusionFormatError, match="sha256"):
        back.verify(0)


def test_index_errors(tmp_path):
    with pytest.raises(FusionFormatError, match="missing"):
        FusionIndex.load(tmp_path)
    (tmp_path / "index.json").write_text(json.dumps({"format": "other", "version": 1}))
    with pytest.raises(FusionFormatError, match="format"):
        FusionIndex.load(tmp_path)
    (tmp_path / "index.json").write_text(json.dumps({"format": "pixvox.fusions", "version": 99}))
    with pytest.raises(FusionFormatError, match="version"):
        FusionIndex.load(tmp_path)
    (tmp_path / "index.json").write_text(
        json.dumps({"format": "pixvox.fusions", "version": 1, "samples": [{}]})
    )
    with pytest.raises(FusionFormatError, match="malformed"):
        FusionIndex.load(tmp_path)
