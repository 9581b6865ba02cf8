"""Res16UNet: output layout, gradient flow, input checks, on random surfaces and a real ScanNet scan."""

from __future__ import annotations

import pytest
import torch

from pixvox.models import build_student
from pixvox.sparse import ME, EmptySparseTensorError, batched_coordinates, sparse_tensor

# small but architecture-covering cases: both block types, 1 and several blocks per stage,
# width-changing shortcuts, different stem kernels
CASES = [
    ("Res16UNet14T", {}),
    ("Res16UNet14S", {"conv1_kernel_size": 5}),
    ("Res16UNet34S", {}),
    ("Res16UNet14A2", {"planes": (8, 16, 24, 32, 32, 24, 16, 16), "init_dim": 8}),
    ("Res16UNet50", {"planes": (8, 8, 16, 16, 16, 16, 8, 8), "init_dim": 8}),
]


@pytest.mark.parametrize("name,kw", CASES, ids=[c[0] for c in CASES])
def test_output_on_input_coordinates(name, kw, seed, make_sparse_input):
    torch.manual_seed(seed)
    x = make_sparse_input(seed, in_channels=3)
    model = build_student(name, in_channels=3, out_channels=7, **kw).eval()
    with torch.no_grad():
        y = model(x)
        f = model.forward_features(x)
    assert y.F.shape == (x.F.shape[0], 7)
    assert f.F.shape == (x.F.shape[0], model.feature_channels)
    # same coordinate map: features are row-aligned with the input voxels
    assert y.coordinate_map_key == x.coordinate_map_key
    assert torch.equal(y.C, x.C)
    assert list(y.tensor_stride) == [1, 1, 1]
    assert torch.isfinite(y.F).all()
    # final is a plain 1x1x1 layer on the decoder features (float64 reference)
    ref = f.F.double() @ model.final.kernel.double() + model.final.bias.double()
    torch.testing.assert_close(y.F.double(), ref, rtol=1e-5, atol=1e-5)


def test_output_depends_on_neighbourhood_not_only_on_own_voxel(seed, make_sparse_input):
    """Changing one voxel's feature must change outputs of other voxels (the U-Net mixes context)."""
    torch.manual_seed(seed)
    x = make_sparse_input(seed)
    model = build_student("Res16UNet14T", 3, 4).eval()
    feats = x.F.clone()
    feats[0] += 1.0
    x2 = sparse_tensor(feats, x.C)
    with torch.no_grad():
        d = (model(x).F - model(x2).F).abs().sum(1)
    assert d[1:].max() > 0


def test_gradients_reach_every_parameter(seed, make_sparse_input):
    torch.manual_seed(seed)
    x = make_sparse_input(seed)
    for name, kw in (CASES[0], CASES[-1]):
        model = build_student(name, 3, 5, **kw).train()
        y = model(x)
        loss = (y.F * torch.randn_like(y.F)).sum()
        loss.backward()
        for pname, p in model.named_parameters():
            assert p.grad is not None, f"{name}: no gradient for {pname}"
            assert p.grad.abs().sum() > 0, f"{name}: zero gradient for {pname}"


def test_geometry_only_input_with_constant_ones(seed, make_sparse_input):
    x = make_sparse_input(seed, in_channels=1)
    x = sparse_tensor(torch.ones_like(x.F), x.C)
    model = build_student("Res16UNet14T", in_channels=1, out_channels=3).eval()
    with torch.no_grad():
        assert model(x).F.shape == (x.F.shape[0], 3)


def test_bn_momentum_reaches_every_batchnorm():
    model = build_student("Res16UNet14T", 3, 2, bn_momentum=0.02)
    bns = [m for m in model.modules() if isinstance(m, torch.nn.BatchNorm1d)]
    assert bns and all(m.momentum == 0.02 for m in bns)


def test_rejects_bad_inputs(seed, make_sparse_input):
    model = build_student("Res16UNet14T", 3, 2)
    x = make_sparse_input(seed, in_channels=4)
    with pytest.raises(ValueError, match="3 input channels"):
        model(x)
    with pytest.raises(EmptySparseTensorError):
        sparse_tensor(torch.zeros(0, 3), torch.zeros(0, 4, dtype=torch.int32))
    with pytest.raises(ValueError, match="unknown student"):
        build_student("Res16UNet99", 3, 2)
    with pytest.raises(ValueError, match="8 entries"):
        build_student("Res16UNet14", 3, 2, planes=(8, 8))


def test_real_scannet_scan(scannet_voxels):
    """A real room (ScanNet scene0000_00, 10 cm voxels): one finite row per voxel, batch-independent."""
    coords, colors = scannet_voxels
    torch.manual_seed(0)
    model = build_student("Res16UNet14T", 3, 8).eval()
    x = sparse_tensor(colors, batched_coordinates([coords]))
    with torch.no_grad():
        y = model(x)
        # the same room twice in a batch: each copy must get exactly the single-sample output
        y2 = model(sparse_tensor(torch.cat([colors, colors]), batched_coordinates([coords, coords])))
    assert y.F.shape == (coords.shape[0], 8) and torch.isfinite(y.F).all()
    assert torch.equal(y.C[:, 1:], coords)
    n = coords.shape[0]
    torch.testing.assert_close(y2.F[:n], y.F, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(y2.F[n:], y.F, rtol=1e-4, atol=1e-5)


def test_is_a_minkowski_network():
    model = build_student("Res16UNet14T", 3, 2)
    assert isinstance(model.final, ME.MinkowskiConvolution)
    assert model.final.bias is not None
