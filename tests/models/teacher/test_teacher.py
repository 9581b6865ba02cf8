"""FrozenTeacher, FPN and upsampling projection: frozen backbone, pixel-resolution outputs, input checks."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from pixvox.models import build_teacher
from pixvox.models.teacher import FeaturePyramid, UpsamplingProjection


def _random_teacher(backbone: str, **kw):
    with pytest.warns(UserWarning, match="RANDOM"):
        return build_teacher(backbone, weights="none", **kw)


@pytest.mark.parametrize("backbone", ["resnet18", "efficientnet_lite0"])
@pytest.mark.parametrize("size", [(37, 53), (64, 48), (33, 95)])
def test_pixel_resolution_unit_norm_output(backbone, size, seed):
    torch.manual_seed(seed)
    teacher = _random_teacher(backbone, out_dim=32, fpn_channels=32, projection_channels=16).eval()
    images = torch.rand(2, 3, *size, generator=torch.Generator().manual_seed(seed))
    with torch.no_grad():
        out = teacher(images)
    assert out.shape == (2, 32, *size)
    norms = out.double().norm(dim=1)
    torch.testing.assert_close(norms, torch.ones_like(norms), rtol=0, atol=1e-5)


def test_out_dim_128_as_in_ppkt():
    teacher = _random_teacher("resnet18", out_dim=128, fpn_channels=32, projection_channels=16).eval()
    with torch.no_grad():
        assert teacher(torch.rand(1, 3, 32, 32)).shape == (1, 128, 32, 32)


def test_backbone_frozen_heads_trainable(seed):
    torch.manual_seed(seed)
    teacher = _random_teacher("resnet18", out_dim=16, fpn_channels=32, projection_channels=16)
    teacher.train()
    assert teacher.fpn.training and teacher.projection.training and teacher.head.training
    assert not any(m.training for m in teacher.backbone.modules())
    stats_before = {k: v.clone() for k, v in teacher.backbone.state_dict().items()}

    out = teacher(torch.rand(2, 3, 40, 56, generator=torch.Generator().manual_seed(seed)))
    (out * torch.randn_like(out)).sum().backward()

    trainable = list(teacher.trainable_parameters())
    backbone_ids = {id(p) for p in teacher.backbone.parameters()}
    assert trainable and not backbone_ids & {id(p) for p in trainable}
    others = [p for name, p in teacher.named_parameters() if not name.startswith("backbone.")]
    assert {id(p) for p in trainable} == {id(p) for p in others}
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in trainable)
    assert all(p.grad is None and not p.requires_grad for p in teacher.backbone.parameters())
    # train-mode forward must not touch the frozen BatchNorm statistics
    for k, v in teacher.backbone.state_dict().items():
        assert torch.equal(v, stats_before[k]), k


def test_normalization_per_backbone():
    images = torch.rand(1, 3, 8, 8)
    resnet_teacher = _random_teacher("resnet18", fpn_channels=8, projection_channels=8)
    mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    torch.testing.assert_close(resnet_teacher.normalize(images), (images - mean) / std)
    lite_teacher = _random_teacher("efficientnet_lite0", fpn_channels=8, projection_channels=8)
    torch.testing.assert_close(lite_teacher.normalize(images), images * 2 - 1)


def test_rejects_bad_images():
    teacher = _random_teacher("resnet18", fpn_channels=8, projection_channels=8)
    with pytest.raises(TypeError, match="float"):
        teacher(torch.zeros(1, 3, 16, 16, dtype=torch.uint8))
    with pytest.raises(ValueError, match="0..255"):
        teacher(torch.full((1, 3, 16, 16), 200.0))
    with pytest.raises(ValueError, match=r"\[B, 3, H, W\]"):
        teacher(torch.rand(3, 16, 16))
    with pytest.raises(ValueError, match="NaN"):
        teacher(torch.full((1, 3, 16, 16), float("nan")))
    with pytest.raises(ValueError, match="empty"):
        teacher(torch.zeros(0, 3, 16, 16))


def test_fpn_merges_all_levels_at_finest_resolution(seed):
    gen = torch.Generator().manual_seed(seed)
    fpn = FeaturePyramid([4, 6, 8, 10], channels=5).eval()
    sizes = [(13, 17), (7, 9), (4, 5), (2, 3)]  # rounded-up odd sizes, as a backbone produces
    stages = [torch.randn(1, c, *s, generator=gen) for c, s in zip([4, 6, 8, 10], sizes)]
    with torch.no_grad():
        p2 = fpn(stages)
        assert p2.shape == (1, 5, 13, 17)
        # every level reaches P2 (top-down path): perturbing C5 changes the output
        stages[3] = stages[3] + 1.0
        assert not torch.allclose(fpn(stages), p2)


def test_upsampling_writes_each_feature_to_its_own_pixels():
    """With the sub-pixel conv reduced to a centre tap copied into all 4 sub-positions, the projection
    is nearest-neighbour upsampling: feature (i, j) at stride 4 lands on pixels 4i..4i+3, 4j..4j+3."""
    proj = UpsamplingProjection(1, 1, scale=4).eval()
    with torch.no_grad():
        for m in proj.modules():
            if isinstance(m, nn.Conv2d):
                m.weight.zero_()
                m.weight[:, 0, 1, 1] = 1.0
    x = torch.rand(1, 1, 3, 5) + 0.1  # positive: ReLU keeps it
    with torch.no_grad():
        out = proj(x, (11, 18))
    want = x.repeat_interleave(4, dim=2).repeat_interleave(4, dim=3)[..., :11, :18]
    torch.testing.assert_close(out, want / (1 + 1e-5))  # BN eval: (x - 0) / sqrt(1 + eps), twice
    with pytest.raises(ValueError, match="cannot cover"):
        proj(x, (13, 18))
