"""PPKT on fusions of F > 1 neighbouring frames: every frame's pixels, each with its own pose."""

from __future__ import annotations

import json

import pytest
import torch

from pixvox.config import PretrainConfig, load_config
from pixvox.datasets.fusion import FusionPretrainDataset, collate_pretrain
from pixvox.objectives.ppkt import match_pixels
from tests.pretrain.conftest import REPO, tiny_overrides

CONFIG = str(REPO / "configs/pretrain/quickstart.yaml")
EDGE = 1e-4  # metres: pixels this close to a voxel face are left out of the float64 comparison


def _cfg(root, tmp_path, *extra: str) -> PretrainConfig:
    overrides = [o for o in tiny_overrides(root, tmp_path, "f3") if not o.startswith("loss.num_pairs=")]
    return load_config(PretrainConfig, CONFIG, [*overrides, "loss.terms=[{name: ppkt}]", *extra])


def _own_pose_voxels(batch: dict, voxel_size: float, d_min: float, d_max: float, pose_of=None) -> dict:
    """Brute force, float64: (frame, v, u) → student voxel of every pixel whose back-projection with
    the pose of frame ``pose_of(f)`` (default: its own) falls in a stored voxel of its sample, away
    from voxel faces."""
    stored = {tuple(c): row for row, c in enumerate(batch["orig_coords"].tolist())}
    out = {}
    for f in range(batch["depths"].shape[0]):
        b = int(batch["frame_sample"][f])
        K = batch["intrinsics"][f].double()
        T = batch["cam_to_world"][f if pose_of is None else pose_of(f)].double()
        z = batch["depths"][f].double()
        vu = ((z > d_min + EDGE) & (z < d_max - EDGE)).nonzero()
        zz = z[vu[:, 0], vu[:, 1]]
        cam = torch.stack([(vu[:, 1] - K[0, 2]) * zz / K[0, 0], (vu[:, 0] - K[1, 2]) * zz / K[1, 1], zz], 1)
        scaled = (cam @ T[:3, :3].T + T[:3, 3]) / voxel_size
        cell = torch.floor(scaled)
        clear = ((scaled - cell).min(1).values > EDGE / voxel_size) & (
            (scaled - cell).max(1).values < 1 - EDGE / voxel_size
        )
        for (v, u), c, ok in zip(vu.tolist(), cell.long().tolist(), clear.tolist()):
            row = stored.get((b, *c))
            if row is not None:
                out[(f, v, u)] = int(batch["orig_to_aug"][row]) if ok else None
    return out


def test_fused_frames_config_must_match_the_fusions(tiny_fusions_f3, tmp_path):
    assert json.loads((tiny_fusions_f3 / "index.json").read_text())["frames_per_sample"] == 3
    cfg = _cfg(tiny_fusions_f3, tmp_path, "data.frames_per_sample=2")
    with pytest.raises(ValueError, match="hold 3 frames per sample but data.frames_per_sample is 2"):
        FusionPretrainDataset(tiny_fusions_f3, cfg.data)


def test_a_pixel_of_frame_k_lands_in_the_voxel_its_own_pose_puts_it_in(tiny_fusions_f3, tmp_path):
    cfg = _cfg(tiny_fusions_f3, tmp_path, "data.frames_per_sample=3")
    d = cfg.data
    ds = FusionPretrainDataset(tiny_fusions_f3, d, augment=True, inputs={"frames"})
    batch = collate_pretrain([ds[(0, 21)], ds[(3, 22)]])  # 3D rotation/flip, 2D crop/flip per frame
    assert batch["images"].shape[0] == 6 and batch["frame_sample"].tolist() == [0, 0, 0, 1, 1, 1]
    mt = match_pixels(batch, d.voxel_size, d.depth_min, d.depth_max)
    got = {
        (f, v, u): vox
        for f, v, u, vox in zip(
            mt["frame"].tolist(), mt["v"].tolist(), mt["u"].tolist(), mt["voxel"].tolist()
        )
    }
    ref = _own_pose_voxels(batch, d.voxel_size, d.depth_min, d.depth_max)
    checked = {k: vox for k, vox in ref.items() if vox is not None}
    assert len(checked) > 0.9 * len(ref)
    assert {k: got.get(k) for k in checked} == checked
    assert not set(got) - set(ref)  # no pixel matched where its own pose finds no stored voxel
    per_frame = torch.bincount(mt["frame"], minlength=6)
    assert (per_frame > 100).all(), per_frame  # every one of the F frames feeds PPKT
    # control: with the first frame's pose, the other frames' pixels would land elsewhere
    wrong = _own_pose_voxels(batch, d.voxel_size, d.depth_min, d.depth_max, pose_of=lambda f: f - f % 3)
    moved = [k for k in checked if k[0] % 3 and wrong.get(k) != checked[k]]
    assert len(moved) > 0.3 * sum(1 for k in checked if k[0] % 3)
