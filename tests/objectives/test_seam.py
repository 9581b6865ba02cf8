"""The objective seam: one registry, weighted terms, only the inputs the terms need."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from pixvox.config import PretrainConfig, load_config
from pixvox.config.objectives import OBJECTIVES
from pixvox.datasets.fusion import FusionPretrainDataset, collate_pretrain
from pixvox.objectives import (
    Objective,
    build_objectives,
    dataset_inputs,
    dataset_options,
    needs_teacher,
    objective_class,
)
from pixvox.pretrain.model import PretrainNet
from pixvox.pretrain.step import PAIR_STREAM, PretrainStep
from tests.pretrain.conftest import REPO, tiny_overrides

CONFIG = str(REPO / "configs/pretrain/quickstart.yaml")
PPKT = "{name: ppkt, weight: %s, num_pairs: 48, temperature: 0.07}"
PC = "{name: pointcontrast, weight: %s, num_pairs: 48, temperature: 0.3}"


def _cfg(tiny_fusions, tmp_path, terms: str) -> PretrainConfig:
    overrides = tiny_overrides(tiny_fusions, tmp_path, "seam", **{"train.batch_size": 2})
    overrides = [o for o in overrides if not o.startswith("loss.num_pairs=")]  # set per term here
    return load_config(PretrainConfig, CONFIG, [*overrides, f"loss.terms=[{terms}]"])


def _batch(cfg: PretrainConfig, root) -> dict:
    ds = FusionPretrainDataset(
        root, cfg.data, augment=True, inputs=dataset_inputs(cfg), **dataset_options(cfg)
    )
    return collate_pretrain([ds[(0, 11)], ds[(3, 12)]])


def _info_nce64(q: torch.Tensor, k: torch.Tensor, tau: float) -> float:
    """Float64 reference: mean cross-entropy of q_i against all k_j, target j = i."""
    q, k = F.normalize(q.double(), dim=1), F.normalize(k.double(), dim=1)
    logits = q @ k.T / tau
    return float((torch.logsumexp(logits, 1) - logits.diagonal()).mean())


def _reference_terms(net, cfg, batch) -> dict[str, float]:
    """Each term's loss computed on its own, in float64, from the network's outputs."""
    with torch.no_grad():
        out = net(batch)
    seeds = [int(s) ^ PAIR_STREAM for s in batch["seeds"]]
    ref = {}
    for obj in build_objectives(cfg):
        pairs = obj.select_pairs(batch, out, seeds)
        if obj.term.name == "ppkt":
            p = pairs.pairs
            n = p.pair_voxel.numel()
            key = torch.zeros(n, pairs.pixel_feats.shape[1], dtype=torch.float64)
            key.index_add_(0, p.pixel_pair, pairs.pixel_feats.double())  # mean ∝ sum before normalizing
            ref["ppkt"] = _info_nce64(out["voxel_feats"][p.pair_voxel], key, obj.term.temperature)
        else:
            i1, i2 = pairs
            ref["pointcontrast"] = _info_nce64(
                out["voxel_feats"][i1], out["voxel_feats2"][i2], obj.term.temperature
            )
    return ref


def test_combined_loss_is_the_weighted_sum_of_separately_computed_terms(tiny_fusions, tmp_path):
    cfg = _cfg(tiny_fusions, tmp_path, f"{PPKT % 0.3}, {PC % 1.7}")
    torch.manual_seed(0)
    net = PretrainNet(cfg).eval()
    batch = _batch(cfg, tiny_fusions)
    ref = _reference_terms(net, cfg, batch)
    assert abs(ref["ppkt"] - ref["pointcontrast"]) > 0.05  # so that swapped weights would show
    for w1, w2 in ((0.3, 1.7), (1.7, 0.3)):
        cfg_w = _cfg(tiny_fusions, tmp_path, f"{PPKT % w1}, {PC % w2}")
        with torch.no_grad():
            total, metrics, items = PretrainStep(net, cfg_w, torch.device("cpu")).losses(batch, gather=False)
        expected = w1 * ref["ppkt"] + w2 * ref["pointcontrast"]
        assert total.item() == pytest.approx(expected, rel=1e-5)
        assert metrics["loss"] == pytest.approx(expected, rel=1e-5)
        assert metrics["loss_ppkt"] == pytest.approx(ref["ppkt"], rel=1e-5)
        assert metrics["loss_pointcontrast"] == pytest.approx(ref["pointcontrast"], rel=1e-5)
        assert metrics["acc"] == metrics["acc_ppkt"] and metrics["pairs"] == metrics["pairs_ppkt"]
        assert items == metrics["pairs_ppkt"] + metrics["pairs_pointcontrast"]


def test_the_dataset_and_network_build_only_what_the_terms_need(tiny_fusions, tmp_path):
    pc = _cfg(tiny_fusions, tmp_path, PC % 1)
    assert dataset_inputs(pc) == {"partner"} and not needs_teacher(pc)
    batch = _batch(pc, tiny_fusions)
    assert "coords2" in batch and "images" not in batch and "depths" not in batch
    assert not torch.equal(batch["orig_coords2"], batch["orig_coords"])  # another fusion
    augment = _cfg(tiny_fusions, tmp_path, "{name: pointcontrast, views: augment}")
    assert dataset_inputs(augment) == {"view2"}
    same = _batch(augment, tiny_fusions)
    assert torch.equal(same["orig_coords2"], same["orig_coords"])
    assert PretrainNet(pc).teacher is None
    ppkt = _cfg(tiny_fusions, tmp_path, PPKT % 1)
    assert dataset_inputs(ppkt) == {"frames"} and needs_teacher(ppkt)
    batch = _batch(ppkt, tiny_fusions)
    assert "images" in batch and "coords2" not in batch
    # a PointContrast-only step runs without any frame
    net = PretrainNet(pc)
    loss, metrics, _ = PretrainStep(net, pc, torch.device("cpu")).losses(_batch(pc, tiny_fusions))
    loss.backward()
    assert metrics["pairs"] == 2 * (48 // 2) and torch.isfinite(loss)


def test_every_registered_objective_resolves_to_its_implementation():
    for name, spec in OBJECTIVES.items():
        cls = objective_class(name)
        assert issubclass(cls, Objective) and cls.term_type is spec.term
        assert spec.term().name == name  # a term `{name: x}` alone takes every default
        assert spec.summary
