"""Each cuda_ext op check passes on this install and fails when its op returns a wrong result."""

from __future__ import annotations

import pytest
import torch

from pixvox import ops
from pixvox.selftest import ops as op_checks
from pixvox.selftest.report import FAIL, PASS

DEVICES = pytest.mark.parametrize("device", ["cpu", pytest.param("cuda", marks=pytest.mark.cuda)])


@DEVICES
@pytest.mark.parametrize("name", list(op_checks.OP_CHECKS))
def test_op_check_passes(seed, device, name):
    r = op_checks.OP_CHECKS[name](torch.device(device), seed)
    assert r.result == PASS, r.detail


def test_the_scene_exercises_holes_misses_and_both_samples(seed):
    s = op_checks.make_scene(seed)
    assert torch.isnan(s.depth).any() and torch.isinf(s.depth).any() and (s.depth <= 0).any()
    assert set(s.coords[:, 0].tolist()) == {0, 1}
    _, (_, index, _) = op_checks._match(s, torch.device("cpu"))
    matched = (index >= 0).float().mean().item()
    assert 0.5 < matched < 0.999  # most pixels find their voxel, the dropped voxels leave misses


def _corrupt(monkeypatch, name: str) -> None:
    """Make the public op behind check ``name`` return a slightly wrong result."""
    if name == "ops.voxel_hash":
        original = ops.VoxelHash.lookup

        def lookup(self, coords):
            rows = original(self, coords).clone()
            rows[0] = (rows[0] + 1) % self.num_voxels
            return rows

        monkeypatch.setattr(ops.VoxelHash, "lookup", lookup)
    elif name == "ops.backproject":
        original_bp = ops.backproject

        def backproject(*a, **k):
            r = original_bp(*a, **k)
            return r._replace(points=r.points + 1e-4)

        monkeypatch.setattr(ops, "backproject", backproject)
    elif name == "ops.pixel_to_voxel":
        original_pv = ops.pixel_to_voxel

        def pixel_to_voxel(*a, **k):
            r = original_pv(*a, **k)
            index = r.voxel_index.clone()
            hit = (index >= 0).nonzero()[0]
            index[hit] = -1  # one matched pixel lost
            return r._replace(voxel_index=index)

        monkeypatch.setattr(ops, "pixel_to_voxel", pixel_to_voxel)
    elif name.startswith("ops.scatter"):
        original_sc = ops.scatter_to_voxels

        def scatter(feats, index, num_voxels, reduce="mean"):
            r = original_sc(feats * (1 + 1e-3), index, num_voxels, reduce)
            return r

        monkeypatch.setattr(ops, "scatter_to_voxels", scatter)
    elif name == "ops.gather":
        original_g = ops.gather_from_voxels
        monkeypatch.setattr(ops, "gather_from_voxels", lambda v, i: original_g(v, i) * (1 + 1e-6))
    else:  # pragma: no cover - a new op check needs a corruption here
        raise AssertionError(f"no corruption for {name}")


@pytest.mark.parametrize("name", list(op_checks.OP_CHECKS))
def test_op_check_fails_on_a_wrong_result(seed, monkeypatch, name):
    _corrupt(monkeypatch, name)
    r = op_checks.OP_CHECKS[name](torch.device("cpu"), seed)
    assert r.result == FAIL, f"{name} did not notice the corruption: {r.figure}"


def test_a_voxel_index_on_a_face_may_differ_elsewhere_not():
    scaled = torch.tensor([[0.5, 1.0, 2.3], [0.5, 1.5, 2.5]], dtype=torch.float64)  # row 0 lies on y = 1
    ref = torch.tensor([4, 7])
    tie = op_checks._voxel_index_comparison("idx", torch.tensor([5, 7]), ref, scaled)
    assert tie.ok and "1 face ties" in tie.detail
    assert not op_checks._voxel_index_comparison("idx", torch.tensor([4, 8]), ref, scaled).ok
