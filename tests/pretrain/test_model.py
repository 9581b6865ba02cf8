"""The pretraining network returns voxel features in the row order of ``batch["coords"]``."""

from __future__ import annotations

import torch

from pixvox.config import PretrainConfig, load_config
from pixvox.pretrain.model import PretrainNet
from pixvox.sparse import batched_coordinates, sparse_tensor


def _batch(seed: int) -> dict:
    g = torch.Generator().manual_seed(seed)
    coords = []
    for _ in range(2):
        c = torch.unique(torch.randint(0, 14, (500, 3), generator=g), dim=0)
        coords.append(c[torch.randperm(c.shape[0], generator=g)])
    c = batched_coordinates(coords)
    return {"coords": c, "feats": torch.rand(c.shape[0], 3, generator=g) - 0.5}


def test_student_features_follow_the_input_rows_when_the_engine_permutes_them(seed, request):
    cfg = load_config(
        PretrainConfig, None, ["loss.name=pointcontrast", "student.name=Res16UNet14T", "loss.embed_dim=8"]
    )
    torch.manual_seed(seed)
    net = PretrainNet(cfg).eval()
    batch = _batch(seed)
    with torch.no_grad():
        ref = net(batch)["voxel_feats"]
    applied = request.getfixturevalue("engine_permutes_rows")
    with torch.no_grad():
        got = net(batch)["voxel_feats"]
        raw = net.student(sparse_tensor(batch["feats"], batch["coords"])).F
    assert applied and got.shape == ref.shape == (batch["coords"].shape[0], 8)
    assert not torch.allclose(raw, ref, atol=1e-4)  # the engine's rows are out of input order
    torch.testing.assert_close(got, ref, rtol=1e-4, atol=1e-5)


def test_student_features_are_equivariant_to_a_shuffle_of_the_input(seed):
    """Real MinkowskiEngine output on the CPU: shuffling the input rows shuffles the features alike."""
    cfg = load_config(
        PretrainConfig, None, ["loss.name=pointcontrast", "student.name=Res16UNet14T", "loss.embed_dim=8"]
    )
    torch.manual_seed(seed)
    net = PretrainNet(cfg).eval()
    batch = _batch(seed)
    perm = torch.randperm(batch["coords"].shape[0], generator=torch.Generator().manual_seed(seed))
    with torch.no_grad():
        ref = net(batch)["voxel_feats"]
        got = net({"coords": batch["coords"][perm], "feats": batch["feats"][perm]})["voxel_feats"]
    torch.testing.assert_close(got, ref[perm], rtol=1e-4, atol=1e-5)


def test_masked_2d_alone_builds_with_either_teacher_head_and_trains_no_2d_head():
    # masked_2d reads the frozen backbone only: the 2D head is frozen, and the linear head has no FPN
    for head in ("fpn", "linear"):
        cfg = load_config(
            PretrainConfig,
            None,
            [
                "loss.terms=[{name: masked_2d}]",
                "student.name=Res16UNet14T",
                "loss.embed_dim=8",
                "teacher.backbone=efficientnet_lite0",
                "teacher.weights=none",
                f"teacher.head={head}",
            ],
        )
        net = PretrainNet(cfg)
        assert net.teacher is not None and net.teacher.head_kind == head
        assert not any(p.requires_grad for p in net.teacher.parameters())
