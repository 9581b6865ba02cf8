"""The SLidR-style teacher head (``head="linear"``): a 1×1 projection of one frozen stage (the
deepest by default), upsampled bilinearly, unit length; nothing else trains."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from pixvox.models import build_teacher


def _teacher(**kw):
    with pytest.warns(UserWarning, match="RANDOM"):
        return build_teacher("efficientnet_lite0", weights="none", out_dim=16, head="linear", **kw)


def test_output_is_the_upsampled_projection_of_the_last_stage(seed):
    torch.manual_seed(seed)
    teacher = _teacher().eval()
    images = torch.rand(2, 3, 45, 61, generator=torch.Generator().manual_seed(seed))
    with torch.no_grad():
        out = teacher(images)
        # reference in float64 from the backbone's last stage and the 1x1 weights
        c5 = teacher.backbone_stages(images)[-1].double()
        w, b = teacher.head.proj.weight.double(), teacher.head.proj.bias.double()
        y = torch.einsum("bchw,oc->bohw", c5, w[:, :, 0, 0]) + b[None, :, None, None]
        y = F.interpolate(y, size=(45, 61), mode="bilinear", align_corners=False)
        ref = y / y.norm(dim=1, keepdim=True)
    assert out.shape == (2, 16, 45, 61)
    torch.testing.assert_close(out.double(), ref, rtol=0, atol=1e-5)


def test_only_the_projection_trains_and_no_gradient_reaches_the_backbone(seed):
    torch.manual_seed(seed)
    teacher = _teacher().train()
    trainable = {n for n, p in teacher.named_parameters() if p.requires_grad}
    assert trainable == {"head.proj.weight", "head.proj.bias"}
    assert {id(p) for p in teacher.trainable_parameters()} == {
        id(teacher.head.proj.weight),
        id(teacher.head.proj.bias),
    }
    teacher(torch.rand(1, 3, 32, 32)).sum().backward()
    assert teacher.head.proj.weight.grad is not None
    assert all(p.grad is None for p in teacher.backbone.parameters())


def test_unknown_head_is_an_error():
    with pytest.raises(ValueError, match="head 'mlp'"), pytest.warns(UserWarning, match="RANDOM"):
        build_teacher("efficientnet_lite0", weights="none", head="mlp")


@pytest.mark.parametrize("stage", [0, 2])
def test_linear_stage_projects_that_stage_and_reads_no_other(seed, stage):
    """With ``linear_stage`` the head is sized for that stage (Lite0: 24 channels at stride 4, 112 at
    stride 16), its output is the float64 projection of that stage, and the other stages are never
    read: poisoned with NaN, they leave the output finite and unchanged."""
    torch.manual_seed(seed)
    teacher = _teacher(linear_stage=stage).eval()
    assert teacher.head.proj.weight.shape[1] == teacher.backbone.stage_channels[stage]
    images = torch.rand(2, 3, 40, 56, generator=torch.Generator().manual_seed(seed))
    with torch.no_grad():
        stages = teacher.backbone_stages(images)
        out = teacher(images, stages)
        poisoned = [s if i == stage else torch.full_like(s, float("nan")) for i, s in enumerate(stages)]
        again = teacher(images, poisoned)
        c = stages[stage].double()
        w, b = teacher.head.proj.weight.double(), teacher.head.proj.bias.double()
        y = torch.einsum("bchw,oc->bohw", c, w[:, :, 0, 0]) + b[None, :, None, None]
        y = F.interpolate(y, size=(40, 56), mode="bilinear", align_corners=False)
        ref = y / y.norm(dim=1, keepdim=True)
    torch.testing.assert_close(out.double(), ref, rtol=0, atol=1e-5)
    assert torch.equal(again, out)


def test_linear_stage_out_of_range_or_without_the_linear_head_is_an_error():
    with pytest.raises(ValueError, match=r"linear_stage 4: efficientnet_lite0 has stages 0\.\.3"):
        _teacher(linear_stage=4)
    with pytest.raises(ValueError, match="only the linear head"), pytest.warns(UserWarning, match="RANDOM"):
        build_teacher("efficientnet_lite0", weights="none", head="fpn", linear_stage=1)
