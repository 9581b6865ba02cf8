"""The sparse-convolution and row-order checks pass on this install and fail on a wrong result."""

from __future__ import annotations

import pytest
import torch

from pixvox.selftest import sparse_conv
from pixvox.selftest.report import FAIL, PASS
from pixvox.sparse import ME

DEVICES = pytest.mark.parametrize("device", ["cpu", pytest.param("cuda", marks=pytest.mark.cuda)])


@DEVICES
def test_sparse_conv_check_passes(seed, device):
    r = sparse_conv.check_sparse_conv(torch.device(device), seed)
    assert r.result == PASS, r.detail
    # 4 forward and 2 transposed cases, 4 comparisons each (coordinates, forward, 2 gradients)
    assert len(r.data["comparisons"]) == 24


class _ScaleGrad(torch.autograd.Function):
    """Identity forward, gradient scaled: a convolution whose backward alone is wrong."""

    @staticmethod
    def forward(ctx, x):
        return x.clone()

    @staticmethod
    def backward(ctx, g):
        return g * 1.0001


def _wrap_output(cls, monkeypatch, change):
    original = cls.forward

    def forward(self, x, *args, **kwargs):
        out = original(self, x, *args, **kwargs)
        return ME.SparseTensor(
            change(out.F),
            coordinate_map_key=out.coordinate_map_key,
            coordinate_manager=out.coordinate_manager,
        )

    monkeypatch.setattr(cls, "forward", forward)


@pytest.mark.parametrize("cls", ["MinkowskiConvolution", "MinkowskiConvolutionTranspose"])
@pytest.mark.parametrize("wrong", ["forward", "backward"])
def test_sparse_conv_check_fails_on_a_wrong_result(seed, monkeypatch, cls, wrong):
    change = (lambda f: f * (1 + 1e-7)) if wrong == "forward" else _ScaleGrad.apply
    _wrap_output(getattr(ME, cls), monkeypatch, change)
    r = sparse_conv.check_sparse_conv(torch.device("cpu"), seed)
    assert r.result == FAIL
    bad = [c["what"] for c in r.data["comparisons"] if not c["ok"]]
    kind = "conv" if cls == "MinkowskiConvolution" else "transposed"
    assert bad and all(w.startswith(kind) or cls == "MinkowskiConvolution" for w in bad)
    if wrong == "backward":
        assert all("grad" in w for w in bad)  # forward values still agree
    else:
        assert any("forward" in w for w in bad)


@DEVICES
def test_row_order_check_passes(seed, device):
    r = sparse_conv.check_row_order(torch.device(device), seed)
    assert r.result == PASS, r.detail
    if device == "cpu":
        assert r.data["engine_kept_input_order"] is True


def _assume_first_appearance_order(out, x):
    """The old assumption: the engine keeps rows in the order the coordinates first appear."""
    seen: dict[tuple, int] = {}
    rows = [seen.setdefault(tuple(c), len(seen)) for c in x.C[x.inverse_mapping].tolist()]
    return out.F[torch.tensor(rows)]


def test_row_order_check_fails_if_rows_are_assumed_in_input_order(seed, monkeypatch, request):
    """The assumption the code made before (rows stay in input order) holds on the CPU engine, and
    the check catches it as soon as the engine permutes rows (as the CUDA map does)."""
    monkeypatch.setattr(sparse_conv, "features_in_input_order", _assume_first_appearance_order)
    assert sparse_conv.check_row_order(torch.device("cpu"), seed).result == PASS
    request.getfixturevalue("engine_permutes_rows")
    r = sparse_conv.check_row_order(torch.device("cpu"), seed)
    assert r.result == FAIL and r.data["engine_kept_input_order"] is False
