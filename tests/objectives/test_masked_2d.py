"""``masked_2d``: patches, voxel-averaged targets, masking, no gradient into the teacher, overfitting."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import pytest
import torch

from pixvox.config import ConfigError, PretrainConfig, load_config
from pixvox.datasets.fusion import FusionPretrainDataset, collate_pretrain
from pixvox.objectives import build_objectives, dataset_inputs, dataset_options
from pixvox.objectives.masked_2d import (
    Masked2DObjective,
    PatchPlan,
    block_voxels,
    choose_masked,
    partition_patches,
    patch_saliency,
    patch_targets,
)
from pixvox.pretrain.model import PretrainNet
from pixvox.pretrain.step import PretrainStep
from tests.pretrain.conftest import REPO, tiny_overrides

CONFIG = str(REPO / "configs/pretrain/quickstart.yaml")
M2D = "{name: masked_2d, weight: %s, block_size: 0.2, decoder_hidden: 32}"
PPKT = "{name: ppkt, weight: %s, num_pairs: 48, temperature: 0.07}"


def _cfg(root, tmp_path, terms: str, *extra: str) -> PretrainConfig:
    overrides = tiny_overrides(root, tmp_path, "m2d", **{"train.batch_size": 2})
    overrides = [o for o in overrides if not o.startswith("loss.num_pairs=")]
    return load_config(PretrainConfig, CONFIG, [*overrides, f"loss.terms=[{terms}]", *extra])


def _batch(cfg: PretrainConfig, root) -> dict:
    ds = FusionPretrainDataset(
        root, cfg.data, augment=True, inputs=dataset_inputs(cfg), **dataset_options(cfg)
    )
    return collate_pretrain([ds[(0, 11)], ds[(3, 12)]])


def _random_patches(seed: int, sizes=(37, 1, 60, 8)) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    patch_sample = torch.cat([torch.full((n,), b) for b, n in enumerate(sizes)])
    targets = torch.randn(patch_sample.numel(), 5, generator=g)
    has_target = torch.rand(patch_sample.numel(), generator=g) < 0.8
    return targets, has_target, patch_sample


def test_block_size_must_be_a_whole_number_of_voxels():
    assert block_voxels(0.1, 0.025) == 4 and block_voxels(0.1, 0.05) == 2
    with pytest.raises(ValueError, match="block_size=0.16 m is not a whole number of voxels"):
        block_voxels(0.16, 0.025)
    with pytest.raises(ConfigError, match=r"loss.terms\[0\].mask_ratio"):
        load_config(PretrainConfig, None, ["loss.terms=[{name: masked_2d, mask_ratio: 1.0}]"])
    with pytest.raises(ValueError, match="target_stage=4: teacher efficientnet_lite0 has 4 stage"):
        PretrainNet(
            load_config(
                PretrainConfig,
                None,
                [
                    "loss.terms=[{name: masked_2d, target_stage: 4}]",
                    "teacher.backbone=efficientnet_lite0",
                    "teacher.weights=none",
                    "student.name=Res16UNet14T",
                ],
            )
        )
    with pytest.raises(ConfigError, match=r"loss.terms\[0\].masking"):
        load_config(PretrainConfig, None, ["loss.terms=[{name: masked_2d, masking: salient}]"])


def test_patches_are_the_floor_cells_of_each_sample(seed):
    g = torch.Generator().manual_seed(seed)
    coords = torch.cat(
        [torch.randint(0, 3, (300, 1), generator=g), torch.randint(-9, 9, (300, 3), generator=g)], 1
    )
    patch_index, patch_sample = partition_patches(coords.int(), 4)
    ref: dict[tuple, int] = {}
    for row, c in enumerate(coords.tolist()):
        key = (c[0], c[1] // 4, c[2] // 4, c[3] // 4)  # Python floor division, also below zero
        assert ref.setdefault(key, int(patch_index[row])) == int(patch_index[row])
    assert len(ref) == patch_sample.numel() and len(set(ref.values())) == len(ref)
    assert all(int(patch_sample[p]) == key[0] for key, p in ref.items())


def test_targets_are_voxel_averaged_teacher_cells_brute_force(seed):
    g = torch.Generator().manual_seed(seed)
    n_frames, C, h, w, stride, H, W = 3, 6, 4, 5, 4, 15, 19  # 15x19 pixels round up to 4x5 cells
    fmap = torch.randn(n_frames, C, h, w, generator=g)
    n_vox, n_pix = 50, 400
    patch_index = torch.randint(0, 12, (n_vox,), generator=g)
    frame = torch.randint(0, n_frames, (n_pix,), generator=g)
    v, u = torch.randint(0, H, (n_pix,), generator=g), torch.randint(0, W, (n_pix,), generator=g)
    voxel = torch.randint(0, 40, (n_pix,), generator=g)  # voxels 40..49 see no pixel
    targets, has = patch_targets(fmap, stride, frame, v, u, voxel, patch_index, 12)
    per_voxel: dict[int, list] = defaultdict(list)
    for f, vv, uu, vox in zip(frame.tolist(), v.tolist(), u.tolist(), voxel.tolist()):
        per_voxel[vox].append(fmap[f, :, vv // stride, uu // stride].double())
    per_patch: dict[int, list] = defaultdict(list)
    for vox, feats in per_voxel.items():
        per_patch[int(patch_index[vox])].append(torch.stack(feats).mean(0))
    for p in range(12):
        assert bool(has[p]) == (p in per_patch)
        if p in per_patch:
            torch.testing.assert_close(
                targets[p].double(), torch.stack(per_patch[p]).mean(0), rtol=1e-5, atol=1e-6
            )


@pytest.mark.parametrize("mode", ["guided", "random"])
@pytest.mark.parametrize("ratio", [0.1, 0.6, 0.75, 0.9])
def test_realised_mask_ratio_equals_the_config_within_one_patch(seed, mode, ratio):
    targets, has, patch_sample = _random_patches(seed)
    sal = patch_saliency(targets, has, patch_sample)
    masked = choose_masked(sal, has, patch_sample, ratio, mode, [seed + b for b in range(4)])
    assert not (masked & ~has).any()  # only patches with a target are masked
    for b in range(4):
        n = int((has & (patch_sample == b)).sum())
        assert abs(int((masked & (patch_sample == b)).sum()) - ratio * n) <= 1


def test_guided_masking_keeps_exactly_the_top_saliency_patches_brute_force(seed):
    targets, has, patch_sample = _random_patches(seed)
    masked = choose_masked(
        patch_saliency(targets, has, patch_sample), has, patch_sample, 0.6, "guided", [0] * 4
    )
    for b in range(4):
        rows = [p for p in range(targets.shape[0]) if int(patch_sample[p]) == b and bool(has[p])]
        mean = sum(targets[p].double() for p in rows) / len(rows)
        dist = {p: float(((targets[p].double() - mean) ** 2).sum() ** 0.5) for p in rows}
        keep = sorted(rows, key=lambda p: -dist[p])[: len(rows) - round(0.6 * len(rows))]
        assert {p for p in rows if not masked[p]} == set(keep)


def test_random_masking_follows_the_seed_and_differs_from_guided(seed):
    targets, has, patch_sample = _random_patches(seed, sizes=(200,))
    sal = patch_saliency(targets, has, patch_sample)
    a = choose_masked(sal, has, patch_sample, 0.6, "random", [seed])
    assert torch.equal(a, choose_masked(sal, has, patch_sample, 0.6, "random", [seed]))
    assert not torch.equal(a, choose_masked(sal, has, patch_sample, 0.6, "random", [seed + 1]))
    assert not torch.equal(a, choose_masked(sal, has, patch_sample, 0.6, "guided", [seed]))


def _teacher_grads(cfg, batch, state) -> tuple[dict, PretrainNet]:
    torch.manual_seed(0)
    net = PretrainNet(cfg)
    net.load_state_dict(state, strict=False)
    loss, metrics, _ = PretrainStep(net, cfg, torch.device("cpu")).losses(batch, gather=False)
    loss.backward()
    grads = {n: p.grad for n, p in net.teacher.named_parameters()}
    return grads, net


def test_no_gradient_reaches_the_teacher(tiny_fusions, tmp_path):
    alone = _cfg(tiny_fusions, tmp_path, M2D % 1)
    batch = _batch(alone, tiny_fusions)
    grads, net = _teacher_grads(alone, batch, {})
    assert grads and all(g is None for g in grads.values())  # backbone, FPN, head: none at all
    assert not any(p.requires_grad for p in net.teacher.parameters())
    assert net.objective_modules["masked_2d"].mask_token.grad is not None
    assert all(p.grad is not None for p in net.student.parameters())
    # with ppkt, the teacher's trainable parts get exactly PPKT's gradient: nothing from masked_2d
    both = _cfg(tiny_fusions, tmp_path, f"{PPKT % 1}, {M2D % 5}")
    state = PretrainNet(both).state_dict()
    g_both, _ = _teacher_grads(both, batch, state)
    g_ppkt, _ = _teacher_grads(_cfg(tiny_fusions, tmp_path, PPKT % 1), batch, state)
    trained = [n for n, g in g_ppkt.items() if g is not None]
    assert trained and all(".backbone." not in f".{n}" for n in trained)
    assert {n for n, g in g_both.items() if g is not None} == set(trained)
    for n in trained:
        # float summation order differs between the runs; a leak of the weight-5 term would not
        torch.testing.assert_close(g_both[n], g_ppkt[n], rtol=1e-4, atol=1e-4 * float(g_ppkt[n].abs().max()))


@pytest.mark.parametrize("teacher", ["quickstart", "dinov2_vits14"])
def test_combined_step_logs_both_terms_and_the_masking(tiny_fusions, tmp_path, teacher):
    extra = [] if teacher == "quickstart" else [f"teacher.backbone={teacher}", "teacher.weights=none"]
    cfg = _cfg(tiny_fusions, tmp_path, f"{PPKT % 1}, {M2D % 0.5}", *extra)
    net = PretrainNet(cfg)
    assert (
        net.objective_modules["masked_2d"].decoder[-1].out_features == net.teacher.backbone.stage_channels[-1]
    )
    loss, m, _ = PretrainStep(net, cfg, torch.device("cpu")).losses(_batch(cfg, tiny_fusions), gather=False)
    assert torch.isfinite(loss)
    assert loss.item() == pytest.approx(m["loss_ppkt"] + 0.5 * m["loss_masked_2d"], rel=1e-5)
    assert m["pairs_masked_2d"] >= 2 and abs(m["mask_ratio_masked_2d"] - 0.6) < 0.1
    assert 0 <= m["acc_masked_2d"] <= 1 and m["acc"] == m["acc_ppkt"]


def _shapes_scene(seed: int, k: int = 3) -> tuple[torch.Tensor, torch.Tensor]:
    """One sample of patches in a 5x5 layout, 2 cells apart: each a full k³ cube or a flat k×k plate."""
    g = torch.Generator().manual_seed(seed)
    full = torch.rand(25, generator=g) < 0.5
    cube = torch.stack(torch.meshgrid(*[torch.arange(k)] * 3, indexing="ij"), -1).reshape(-1, 3)
    coords, kind = [], []
    for i in range(25):
        cells = cube if full[i] else cube[cube[:, 2] == 0]
        coords.append(cells + torch.tensor([2 * k * (i % 5), 2 * k * (i // 5), 0]))
        kind.append(torch.full((cells.shape[0],), int(full[i])))
    c = torch.cat(coords)
    return torch.cat([torch.zeros(c.shape[0], 1, dtype=torch.long), c], 1).int(), torch.cat(kind)


def test_loss_falls_to_zero_when_the_target_is_a_function_of_the_patch_geometry(tmp_path):
    """Target: one of two fixed vectors, by the patch's shape (cube or plate), which the student sees
    through the sparse convolutions even where the patch is masked. A few steps drive it to ~0."""
    cfg = load_config(
        PretrainConfig,
        None,
        [
            "loss.terms=[{name: masked_2d, block_size: 0.3, decoder_hidden: 32, visible_weight: 1}]",
            "data.voxel_size=0.1",
            "student.name=Res16UNet14T",
            "loss.embed_dim=16",
            "teacher.backbone=efficientnet_lite0",
            "teacher.weights=none",
        ],
    )
    torch.manual_seed(0)
    net = PretrainNet(cfg)
    (objective,) = build_objectives(cfg)
    assert isinstance(objective, Masked2DObjective) and objective.k == 3
    coords, kind = _shapes_scene(3)
    patch_index, patch_sample = partition_patches(coords, 3)
    C = net.objective_modules["masked_2d"].decoder[-1].out_features
    basis = torch.eye(C)[:2] * 3.0 + 0.5  # two distinct fixed "teacher features"
    patch_kind = torch.zeros(patch_sample.numel(), dtype=torch.long).index_put_((patch_index,), kind)
    targets, has = basis[patch_kind], torch.ones(patch_sample.numel(), dtype=torch.bool)
    sal = patch_saliency(targets, has, patch_sample)
    masked = choose_masked(sal, has, patch_sample, 0.6, "random", [7])
    plan = PatchPlan(patch_index, patch_sample, targets, has, sal, masked)
    batch = {"coords": coords, "feats": torch.rand(coords.shape[0], 3) - 0.5, "masked_2d": plan}
    opt = torch.optim.Adam([p for p in net.parameters() if p.requires_grad], lr=1e-2)
    losses = []
    for _ in range(100):
        res = objective.score(net(batch), plan, gather=False)
        opt.zero_grad()
        res.loss.backward()
        opt.step()
        losses.append(res.loss.item())
    assert losses[0] > 0.5 and min(losses[-5:]) < 0.02, losses[::10]


def _dist_worker(rank: int, root: str, out: str, terms: str) -> None:
    from pixvox.pretrain.run import main

    overrides = [
        o
        for o in tiny_overrides(Path(root), Path(out), "ddp", **{"train.max_steps": 2})
        if "num_pairs" not in o
    ]
    main([CONFIG, *overrides, f"loss.terms=[{terms}]", "--resume", "none"])


@pytest.mark.slow
def test_two_gloo_processes_train_masked_2d_alone_and_with_ppkt(tiny_fusions, tmp_path):
    """DistributedDataParallel needs a gradient for every trainable parameter: the frozen teacher head
    (masked_2d alone), the mask token and decoder, and a student run twice (with PPKT) all pass."""
    from pixvox.comm import launch_local
    from pixvox.engine.logger import read_metrics

    for i, terms in enumerate((M2D % 1, f"{PPKT % 1}, {M2D % 1}")):
        out = tmp_path / str(i)
        launch_local(_dist_worker, 2, str(tiny_fusions), str(out), terms)
        rows = [r for r in read_metrics(out / "ddp/metrics.jsonl") if "loss" in r]
        assert [r["step"] for r in rows] == [1, 2]
        assert all(torch.isfinite(torch.tensor(r["loss"])) and r["pairs_masked_2d"] >= 2 for r in rows)


@pytest.mark.parametrize("kind", ["cosine", "smooth_l1"])
def test_loss_is_masked_mean_plus_weighted_visible_mean_float64(kind, seed):
    cfg = load_config(
        PretrainConfig,
        None,
        [f"loss.terms=[{{name: masked_2d, loss: {kind}, visible_weight: 0.3}}]", "data.voxel_size=0.05"],
    )
    (objective,) = build_objectives(cfg)
    targets, has, patch_sample = _random_patches(seed, sizes=(40, 25))
    masked = choose_masked(
        patch_saliency(targets, has, patch_sample), has, patch_sample, 0.6, "random", [1, 2]
    )
    plan = PatchPlan(torch.zeros(0, dtype=torch.long), patch_sample, targets, has, torch.zeros(65), masked)
    pred = torch.randn(65, 5, generator=torch.Generator().manual_seed(seed + 1), requires_grad=True)
    res = objective.score({"masked_2d_pred": pred}, plan, gather=False)
    p, t = pred.detach().double(), targets.double()
    if kind == "cosine":
        per = 1 - (p * t).sum(1) / (p.norm(dim=1) * t.norm(dim=1))
    else:
        tn = (t - t.mean(1, keepdim=True)) / torch.sqrt(t.var(1, unbiased=False, keepdim=True) + 1e-5)
        d = (p - tn).abs()
        per = torch.where(d < 1, 0.5 * d**2, d - 0.5).mean(1)
    want = per[masked & has].mean() + 0.3 * per[~masked & has].mean()
    assert res.loss.item() == pytest.approx(float(want), rel=1e-5)
    assert res.metrics["loss"] == pytest.approx(float(want), rel=1e-5)
    assert res.metrics["pairs"] == int((masked & has).sum()) == res.items
    res.loss.backward()
    assert (pred.grad[~has] == 0).all() and (pred.grad[has].abs().sum(1) > 0).all()  # no target, no loss
