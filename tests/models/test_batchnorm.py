"""convert_sync_batchnorm: every BN becomes synchronized, outputs and state-dict keys are unchanged."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from pixvox.models import build_student, build_teacher, convert_sync_batchnorm
from pixvox.models.batchnorm import count_batchnorms
from pixvox.sparse import ME


def test_student_eval_outputs_unchanged(seed, make_sparse_input):
    torch.manual_seed(seed)
    x = make_sparse_input(seed)
    model = build_student("Res16UNet14T", 3, 8)
    with torch.no_grad():
        model.train()(x)  # non-trivial running statistics
        before = model.eval()(x).F
    keys = list(model.state_dict())
    n_bn = count_batchnorms(model)["plain"]
    model = convert_sync_batchnorm(model)
    assert count_batchnorms(model) == {"sync": n_bn, "plain": 0}
    minkowski = [m for m in model.modules() if isinstance(m, ME.MinkowskiBatchNorm)]
    assert minkowski and all(isinstance(m, ME.MinkowskiSyncBatchNorm) for m in minkowski)
    assert list(model.state_dict()) == keys
    assert not model.training
    with torch.no_grad():
        after = model(x).F
    torch.testing.assert_close(after, before, rtol=0, atol=0)


def test_teacher_keeps_frozen_backbone():
    with pytest.warns(UserWarning, match="RANDOM"):
        teacher = build_teacher(
            "resnet18", weights="none", out_dim=16, fpn_channels=32, projection_channels=16
        )
    images = torch.rand(1, 3, 45, 61, generator=torch.Generator().manual_seed(0))
    teacher.eval()
    with torch.no_grad():
        before = teacher(images)
    teacher = convert_sync_batchnorm(teacher)
    assert count_batchnorms(teacher)["plain"] == 0
    assert not any(p.requires_grad for p in teacher.backbone.parameters())
    teacher.train()
    assert not any(m.training for m in teacher.backbone.modules())
    teacher.eval()
    with torch.no_grad():
        torch.testing.assert_close(teacher(images), before, rtol=0, atol=0)


def test_single_batchnorm_module_is_returned_converted():
    bn = nn.BatchNorm2d(4)
    sync = convert_sync_batchnorm(bn)
    assert isinstance(sync, nn.SyncBatchNorm) and sync.weight is bn.weight
