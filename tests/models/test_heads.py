"""Projection heads: float64 references for the 1x1 maps and unit-norm outputs."""

from __future__ import annotations

import pytest
import torch

from pixvox.models import ProjectionHead2D, ProjectionHead3D


@pytest.mark.parametrize("out_dim", [64, 128])
def test_head_3d_matches_reference(out_dim, seed, make_sparse_input):
    torch.manual_seed(seed)
    x = make_sparse_input(seed, in_channels=12)
    head = ProjectionHead3D(12, out_dim)
    with torch.no_grad():
        head.proj.bias.normal_()
    y = head(x)
    assert y.coordinate_map_key == x.coordinate_map_key and torch.equal(y.C, x.C)
    w = head.proj.kernel.detach().double().reshape(12, out_dim)
    ref = x.F.double() @ w + head.proj.bias.detach().double().reshape(1, out_dim)
    ref = ref / ref.norm(dim=1, keepdim=True)
    torch.testing.assert_close(y.F.double(), ref, rtol=1e-5, atol=1e-6)
    y.F.sum().backward()
    assert head.proj.kernel.grad is not None


@pytest.mark.parametrize("out_dim", [64, 128])
def test_head_2d_matches_reference(out_dim, seed):
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(2, 24, 7, 9, generator=gen)
    head = ProjectionHead2D(24, out_dim)
    y = head(x)
    assert y.shape == (2, out_dim, 7, 9)
    w = head.proj.weight.detach().double().reshape(out_dim, 24)
    ref = torch.einsum("oc,bchw->bohw", w, x.double()) + head.proj.bias.detach().double().view(1, -1, 1, 1)
    ref = ref / ref.norm(dim=1, keepdim=True)
    torch.testing.assert_close(y.double(), ref, rtol=1e-5, atol=1e-6)


def test_zero_features_give_zero_not_nan():
    head = ProjectionHead2D(3, 4)
    with torch.no_grad():
        head.proj.weight.zero_()
        head.proj.bias.zero_()
    y = head(torch.randn(1, 3, 2, 2))
    assert torch.isfinite(y).all() and (y == 0).all()
