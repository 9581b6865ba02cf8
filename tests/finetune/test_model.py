"""Initialization from pretraining checkpoints, linear probing, and the distributed loss normalization."""

from __future__ import annotations

import pytest
import torch

from pixvox.comm import launch_local
from pixvox.config import FinetuneConfig, load_config
from pixvox.datasets.segmentation import IGNORE, collate_segmentation
from pixvox.errors import EmptyBatchError
from pixvox.finetune.model import SegmentationNet, initialize
from pixvox.finetune.step import SegmentationStep
from pixvox.sparse import batched_coordinates, sparse_tensor

from .conftest import make_pretrain_checkpoint
from .ddp_helpers import TinyNet, ddp_worker, two_rank_batches


def finetune_cfg(*overrides: str) -> FinetuneConfig:
    return load_config(FinetuneConfig, None, ["student.name=Res16UNet14T", *overrides])


def test_pretrained_init_transfers_every_backbone_tensor(tmp_path, seed):
    source = make_pretrain_checkpoint(tmp_path / "pre", seed=seed)
    torch.manual_seed(seed + 1)
    net = SegmentationNet(finetune_cfg().student, num_classes=13)
    fresh_head = net.student.final.kernel.detach().clone()
    cfg = finetune_cfg("init.mode=pretrained", f"init.checkpoint={tmp_path / 'pre'}")
    report, path = initialize(net, cfg)
    assert path == tmp_path / "pre/checkpoints/step_00000010.pt"
    head = {"final.kernel", "final.bias"}
    backbone = [k for k in source if k not in head]
    # every tensor of the pretrained student but its 16-dim head: weights, BN statistics and counters
    assert len(backbone) == len(source) - 2 and len(backbone) > 100
    assert sorted(report.loaded) == sorted(backbone)
    assert sorted(report.expected_missing) == sorted(head)
    assert not report.unexpected and not report.missing and not report.shape_mismatched
    mine = net.student.state_dict()
    for k in backbone:
        assert torch.equal(mine[k], source[k]), k
    assert mine["final.kernel"].shape[-1] == 13 and source["final.kernel"].shape[-1] == 16
    assert torch.equal(mine["final.kernel"], fresh_head)  # the new head keeps its initialization
    assert all(p.requires_grad for p in net.parameters())


def test_a_checkpoint_of_another_student_is_refused(tmp_path):
    make_pretrain_checkpoint(tmp_path / "pre", name="Res16UNet14S")
    net = SegmentationNet(finetune_cfg().student, 5)
    with pytest.raises(ValueError, match="student.name=Res16UNet14S"):
        initialize(net, finetune_cfg("init.mode=pretrained", f"init.checkpoint={tmp_path / 'pre'}"))
    make_pretrain_checkpoint(tmp_path / "ones", input="ones")
    with pytest.raises(ValueError, match="student.input=ones"):
        initialize(net, finetune_cfg("init.mode=pretrained", f"init.checkpoint={tmp_path / 'ones'}"))
    with pytest.raises(FileNotFoundError, match="tools/pretrain.sh"):
        initialize(net, finetune_cfg("init.mode=pretrained", f"init.checkpoint={tmp_path / 'nothing'}"))


def _sparse_batch(seed: int, n_classes: int) -> dict:
    g = torch.Generator().manual_seed(seed)
    coords = [torch.unique(torch.randint(0, 12, (300, 3), generator=g), dim=0) for _ in range(2)]
    c = batched_coordinates(coords)
    labels = torch.randint(0, n_classes, (c.shape[0],), generator=g)
    labels[torch.rand(c.shape[0], generator=g) < 0.3] = IGNORE
    return {"coords": c, "feats": torch.rand(c.shape[0], 3, generator=g) - 0.5, "labels": labels}


def test_linear_probe_trains_only_the_head(tmp_path, seed):
    make_pretrain_checkpoint(tmp_path / "pre", seed=seed)
    cfg = finetune_cfg("init.mode=linear_probe", f"init.checkpoint={tmp_path / 'pre'}")
    net = SegmentationNet(cfg.student, 4)
    initialize(net, cfg)
    trainable = [n for n, p in net.named_parameters() if p.requires_grad]
    assert trainable == ["student.final.kernel", "student.final.bias"]
    before = {k: v.clone() for k, v in net.state_dict().items()}
    net.train()
    assert not net.student.bn0.training and net.student.final.training
    opt = torch.optim.SGD([p for p in net.parameters() if p.requires_grad], lr=0.5)
    step = SegmentationStep(net, torch.device("cpu"))
    for i in range(2):
        out = step(_sparse_batch(seed + i, 4), i)
        opt.zero_grad()
        out.loss.backward()
        opt.step()
    after = net.state_dict()
    changed = sorted(k for k in after if not torch.equal(after[k], before[k]))
    assert changed == ["student.final.bias", "student.final.kernel"]  # BN statistics frozen too


def test_step_loss_is_the_mean_over_labeled_voxels(seed):
    torch.manual_seed(seed)
    net = SegmentationNet(finetune_cfg().student, 5).double()
    batch = _sparse_batch(seed, 5)
    batch["feats"] = batch["feats"].double()
    w = torch.rand(5, dtype=torch.float64) + 0.5
    out = SegmentationStep(net, torch.device("cpu"), class_weights=w)(batch, 0)
    with torch.no_grad():
        logits = net(batch["feats"], batch["coords"])
    keep = batch["labels"] != IGNORE
    y = batch["labels"][keep]
    nll = -torch.log_softmax(logits[keep], 1)[torch.arange(len(y)), y]
    ref = (w[y] * nll).sum() / w[y].sum()
    assert out.loss.item() == pytest.approx(ref.item(), rel=1e-9)
    assert out.metrics["labeled_voxels"] == keep.sum().item()
    assert out.metrics["acc"] == pytest.approx((logits[keep].argmax(1) == y).double().mean().item())
    none = dict(batch, labels=torch.full_like(batch["labels"], IGNORE))
    with pytest.raises(EmptyBatchError, match="no labeled voxel"):  # the trainer skips such a batch
        SegmentationStep(net, torch.device("cpu"))(none, 0)


def test_two_processes_give_the_single_process_gradient(tmp_path, seed):
    net = TinyNet()
    b = two_rank_batches(seed)
    union = {k: torch.cat([b[0][k], b[1][k]]) for k in ("feats", "coords", "labels")}
    res = SegmentationStep(net, torch.device("cpu"))(union, 0)
    res.loss.backward()
    launch_local(ddp_worker, 2, seed, str(tmp_path / "g.pt"))
    got = torch.load(tmp_path / "g.pt")
    torch.testing.assert_close(got["grad"], net.lin.weight.grad, rtol=1e-10, atol=1e-12)
    assert got["loss"] == pytest.approx(res.metrics["loss"])


def test_resolve_checkpoint_accepts_file_folder_and_run(tmp_path):
    from pixvox.finetune.model import resolve_pretrain_checkpoint

    make_pretrain_checkpoint(tmp_path / "run", step=5)
    make_pretrain_checkpoint(tmp_path / "run", step=20)
    newest = tmp_path / "run/checkpoints/step_00000020.pt"
    assert resolve_pretrain_checkpoint(tmp_path / "run") == newest
    assert resolve_pretrain_checkpoint(tmp_path / "run/checkpoints") == newest
    old = tmp_path / "run/checkpoints/step_00000005.pt"
    assert resolve_pretrain_checkpoint(str(old)) == old


def _points_item(seed: int) -> dict:
    """One scene as the dataset gives it: voxels in random order, points pointing at their voxel."""
    g = torch.Generator().manual_seed(seed)
    coords = torch.unique(torch.randint(0, 12, (400, 3), generator=g), dim=0).int()
    coords = coords[torch.randperm(coords.shape[0], generator=g)]
    inverse = torch.randint(0, coords.shape[0], (900,), generator=g)
    return {
        "name": "scene",
        "seed": seed,
        "coords": coords,
        "feats": torch.rand(coords.shape[0], 3, generator=g) - 0.5,
        "labels": torch.zeros(coords.shape[0], dtype=torch.long),
        "inverse": inverse,
        "point_labels": torch.zeros(inverse.shape[0], dtype=torch.long),
        "point_index": torch.arange(inverse.shape[0]),
    }


@pytest.mark.parametrize("probe", [False, True])
def test_logits_land_on_their_voxels_when_the_engine_permutes_rows(seed, request, probe):
    """The logits of voxel i (and of every point whose inverse is i) are the same whether or not
    MinkowskiEngine stores the rows in input order; the engine's own order really differs."""
    from pixvox.finetune.evaluate import predict_points

    torch.manual_seed(seed)
    net = SegmentationNet(finetune_cfg().student, 4).eval()
    if probe:
        net.freeze_backbone()
    item = _points_item(seed)
    batch = collate_segmentation([item])
    with torch.no_grad():
        ref = net(batch["feats"], batch["coords"])
        ref_points, _ = predict_points(net, item, torch.device("cpu"))
    applied = request.getfixturevalue("engine_permutes_rows")
    with torch.no_grad():
        got = net(batch["feats"], batch["coords"])
        got_points, pred = predict_points(net, item, torch.device("cpu"))
        raw = net.student(sparse_tensor(batch["feats"], batch["coords"])).F
    assert applied, "the permutation fixture did not take effect"
    assert not torch.allclose(raw, ref, atol=1e-4)  # engine rows are out of input order
    torch.testing.assert_close(got, ref, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(got_points, ref_points, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(got_points, ref[item["inverse"]], rtol=1e-4, atol=1e-5)
    assert torch.equal(pred, got_points.argmax(1))


def test_kept_bn_statistics_stay_and_training_runs_the_evaluation_network(tmp_path, seed):
    # init.keep_bn_stats: the pretraining's running statistics normalize training too, so a forward in
    # train mode equals one in eval mode, and steps move the weights (BN affine included), not the stats.
    source = make_pretrain_checkpoint(tmp_path / "pre", seed=seed)
    cfg = finetune_cfg(
        "init.mode=pretrained", f"init.checkpoint={tmp_path / 'pre'}", "init.keep_bn_stats=true"
    )
    net = SegmentationNet(cfg.student, 4)
    initialize(net, cfg)
    batch = _sparse_batch(seed, 4)
    net.eval()
    with torch.no_grad():
        want = net(batch["feats"], batch["coords"])
    net.train()
    assert net.student.final.training and not net.student.bn0.training
    with torch.no_grad():
        got = net(batch["feats"], batch["coords"])
    assert torch.equal(got, want)
    opt = torch.optim.SGD(net.parameters(), lr=0.5)
    step = SegmentationStep(net, torch.device("cpu"))
    out = step(batch, 0)
    opt.zero_grad()
    out.loss.backward()
    opt.step()
    after = net.student_state()
    stats = [k for k in source if "running_" in k]
    assert stats and all(torch.equal(after[k], source[k]) for k in stats)
    assert not torch.equal(after["bn0.bn.weight"], source["bn0.bn.weight"])
