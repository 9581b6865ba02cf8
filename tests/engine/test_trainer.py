"""The training loop's skipped steps (issue 14 items 1 and 2): a non-finite loss or gradient, or an
empty batch, applies no update (checked against a plain loop that leaves those steps out), is
counted and logged, and K in a row stop the run with a user error; processes agree on skipping."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch
from torch import nn

from pixvox.comm import DistInfo, launch_local
from pixvox.config.common import TrainConfig
from pixvox.engine.logger import MetricLogger, read_metrics
from pixvox.engine.skips import NAN_STEPS_ENV, LoadedBatch
from pixvox.engine.trainer import StepOutput, Trainer
from pixvox.errors import EmptyBatchError, EmptyBatchesError, NonFiniteTrainingError, UserError

STEPS = 6
SINGLE = DistInfo(0, 0, 1, torch.device("cpu"), None)


def _net(seed: int) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4), nn.ReLU(), nn.Linear(4, 1))


def _batches(seed: int, n: int = STEPS) -> list[tuple[torch.Tensor, torch.Tensor]]:
    g = torch.Generator().manual_seed(seed)
    return [(torch.randn(8, 3, generator=g), torch.randn(8, 1, generator=g)) for _ in range(n)]


def _loss(net: nn.Module, batch) -> torch.Tensor:
    x, y = batch
    return ((net(x) - y) ** 2).mean()


def _optim(net: nn.Module):
    opt = torch.optim.SGD(net.parameters(), lr=0.1, momentum=0.9)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 1.0 / (1 + s))
    return opt, sched


def _reference(seed: int, skip: set[int]) -> dict[str, torch.Tensor]:
    """A plain loop that leaves out the steps in ``skip`` (1-based) but advances the schedule."""
    net = _net(seed)
    opt, sched = _optim(net)
    net.train()
    for step, batch in enumerate(_batches(seed), start=1):
        if step not in skip:
            opt.zero_grad()
            _loss(net, batch).backward()
            opt.step()
        sched.step()
    return net.state_dict()


def _trainer(tmp_path: Path, net: nn.Module, loader, step_fn=None, scaler=None, **cfg) -> Trainer:
    opt, sched = _optim(net)
    tc = TrainConfig(max_steps=STEPS, log_every=1, checkpoint_every=2, **cfg)
    return Trainer(
        model=net,
        step_fn=step_fn or (lambda b, s: StepOutput(loss=_loss(net, b), metrics={"loss": 0.0}, items=8)),
        optimizer=opt,
        scheduler=sched,
        loader=loader,
        cfg=tc,
        run_dir=tmp_path,
        dist=SINGLE,
        logger=MetricLogger(tmp_path, STEPS, progress_bar=False, wandb_mode="disabled"),
        config_dict={},
        scaler=scaler,
    )


def test_nan_steps_apply_no_update_and_are_counted(tmp_path, monkeypatch, seed):
    monkeypatch.setenv(NAN_STEPS_ENV, "2,3")
    net = _net(seed)
    scaler = torch.amp.GradScaler("cpu")
    scale = scaler.get_scale()
    trainer = _trainer(tmp_path, net, _batches(seed), scaler=scaler)
    state = trainer.run()
    trainer.logger.close(curves_png=False)
    ref = _reference(seed, {2, 3})
    for k, v in net.state_dict().items():  # weights and BatchNorm running statistics
        torch.testing.assert_close(v, ref[k], rtol=1e-6, atol=1e-7, msg=k)
    assert state.step == STEPS and state.skipped_nonfinite == 2
    assert scaler.get_scale() == scale  # a NaN loss never reaches the GradScaler
    rows = read_metrics(tmp_path / "metrics.jsonl")
    assert [r["skipped_nonfinite"] for r in rows] == [0, 1, 2, 2, 2, 2]
    assert rows[1]["loss"] is None and rows[1]["grad_norm"] is None
    assert rows[1]["nonfinite"] == ["loss", "grad_norm"]
    assert rows[0]["loss"] == 0.0 and "nonfinite" not in rows[0]
    # the schedule advanced on the skipped steps: lr at step 6 = 0.1 / (1 + 6)
    assert rows[-1]["lr"] == pytest.approx(0.1 / 7)


def test_nonfinite_gradients_are_skipped(tmp_path, seed):
    net = _net(seed)
    plain = _trainer(tmp_path, net, _batches(seed)).step_fn

    losses = []

    def step_fn(batch, step):
        out = plain(batch, step)
        if step == 3:  # 0-based: the 4th step. sqrt at 0: the value is 0, the gradient NaN
            out.loss = out.loss + (net[0].bias * 0).sqrt().sum()
        losses.append(float(out.loss.detach()))
        return out

    trainer = _trainer(tmp_path, net, _batches(seed), step_fn=step_fn)
    state = trainer.run()
    trainer.logger.close(curves_png=False)
    assert state.skipped_nonfinite == 1 and all(map(math.isfinite, losses))
    ref = _reference(seed, {4})
    for k, v in net.state_dict().items():
        torch.testing.assert_close(v, ref[k], rtol=1e-6, atol=1e-7, msg=k)


def test_k_nonfinite_steps_in_a_row_stop_the_run(tmp_path, monkeypatch, seed):
    monkeypatch.setenv(NAN_STEPS_ENV, "3,4,5")
    trainer = _trainer(tmp_path, _net(seed), _batches(seed), max_nonfinite_steps=3)
    with pytest.raises(NonFiniteTrainingError) as err:
        trainer.run()
    msg = str(err.value)
    assert isinstance(err.value, UserError)
    assert "step 5" in msg and str(tmp_path / "checkpoints" / "step_00000004.pt") in msg
    assert "optim.lr" in msg and "optim.grad_clip" in msg and "train.amp" in msg


def test_two_apart_do_not_stop_the_run(tmp_path, monkeypatch, seed):
    monkeypatch.setenv(NAN_STEPS_ENV, "2,4")
    state = _trainer(tmp_path, _net(seed), _batches(seed), max_nonfinite_steps=2).run()
    assert state.skipped_nonfinite == 2 and state.step == STEPS


def test_empty_batches_are_skipped_and_counted(tmp_path, seed):
    net = _net(seed)
    batches: list = _batches(seed)
    batches[1] = LoadedBatch(None, [])  # every sample of the batch was unreadable
    plain = _trainer(tmp_path, net, []).step_fn

    def step_fn(batch, step):
        if step == 4:
            raise EmptyBatchError("InfoNCE needs at least 2 pairs across the batch, got 1")
        return plain(batch, step)

    trainer = _trainer(tmp_path, net, batches, step_fn=step_fn)
    state = trainer.run()
    trainer.logger.close(curves_png=False)
    assert state.skipped_batches == 2 and state.skipped_nonfinite == 0
    ref = _reference(seed, {2, 5})
    for k, v in net.state_dict().items():
        torch.testing.assert_close(v, ref[k], rtol=1e-6, atol=1e-7, msg=k)
    assert [r["skipped_batches"] for r in read_metrics(tmp_path / "metrics.jsonl")] == [0, 1, 1, 1, 2, 2]


def test_k_empty_batches_in_a_row_stop_the_run(tmp_path, seed):
    def step_fn(batch, step):
        raise EmptyBatchError("InfoNCE needs at least 2 pairs across the batch, got 0")

    trainer = _trainer(tmp_path, _net(seed), _batches(seed), step_fn=step_fn, max_nonfinite_steps=4)
    with pytest.raises(EmptyBatchesError, match="step 4: 4 consecutive batches"):
        trainer.run()


def _rank_worker(rank: int, out: str, seed: int) -> None:
    net = _net(seed)
    model = torch.nn.parallel.DistributedDataParallel(net)
    dist = DistInfo(rank, rank, 2, torch.device("cpu"), "gloo")

    def step_fn(batch, step):
        loss = _loss(model, batch)
        if rank == 1 and step == 2:  # a NaN on one process only
            loss = loss * float("nan")
        return StepOutput(loss=loss)

    opt, sched = _optim(net)
    loader: list = _batches(seed + rank)
    if rank == 0:  # every sample of this process's 5th batch was unreadable
        loader[4] = LoadedBatch(None, [])
    run = Path(out) / f"rank{rank}"
    trainer = Trainer(
        model=model,
        step_fn=step_fn,
        optimizer=opt,
        scheduler=sched,
        loader=loader,
        cfg=TrainConfig(max_steps=STEPS, log_every=1, checkpoint_every=100),
        run_dir=run,
        dist=dist,
        logger=MetricLogger(run, STEPS, enabled=False),
        config_dict={},
    )
    state = trainer.run()
    result = {"skipped": state.skipped_nonfinite, "empty": state.skipped_batches, "weights": net.state_dict()}
    torch.save(result, Path(out) / f"{rank}.pt")


def test_every_process_skips_when_one_has_a_nan_or_no_batch(tmp_path, seed):
    launch_local(_rank_worker, 2, str(tmp_path), seed)
    r0, r1 = (torch.load(tmp_path / f"{r}.pt", weights_only=True) for r in (0, 1))
    assert r0["skipped"] == r1["skipped"] == 1 and r0["empty"] == r1["empty"] == 1
    for k, v in r0["weights"].items():
        if k.endswith(("running_mean", "running_var", "num_batches_tracked")):
            continue  # plain BatchNorm: each process keeps its own statistics
        assert torch.isfinite(v.float()).all(), k
        torch.testing.assert_close(v, r1["weights"][k], msg=k)


def test_summary_writes_null_and_a_flag_for_a_nan_loss(tmp_path, monkeypatch):
    from pixvox.pretrain.run import main

    from ..pretrain.conftest import REPO, tiny_overrides  # noqa: TID252

    root = _tiny_fusions(tmp_path)
    monkeypatch.setenv(NAN_STEPS_ENV, "2")
    args = tiny_overrides(root, tmp_path, "nan", **{"train.max_steps": 2, "train.checkpoint_every": 2})
    main([str(REPO / "configs/pretrain/quickstart.yaml"), *args, "--resume", "none"])
    summary = json.loads((tmp_path / "nan" / "summary.json").read_text())
    assert summary["skipped_nonfinite"] == 1 and summary["loss"] is None and "loss" in summary["nonfinite"]


def _tiny_fusions(tmp_path: Path) -> Path:
    from pixvox.prep import fusion as make_fusions
    from pixvox.prep import synthetic

    synthetic.generate(
        tmp_path / "syn", num_scenes=1, frames_per_scene=4, seed=3, image_size=(60, 80), progress=False
    )
    root = tmp_path / "syn" / "fusions"
    make_fusions.make_fusions(tmp_path / "syn" / "frames", root, voxel_size=0.1, progress=False)
    return root


def test_skip_counters_continue_after_a_resume(tmp_path, monkeypatch, seed):
    from pixvox.engine.checkpoint import latest_checkpoint, load_checkpoint

    monkeypatch.setenv(NAN_STEPS_ENV, "2,5")
    first = _trainer(tmp_path, _net(seed), _batches(seed)[:4])
    first.cfg.max_steps = 4
    assert first.run().skipped_nonfinite == 1
    saved = load_checkpoint(latest_checkpoint(tmp_path / "checkpoints"))
    assert saved["step"] == 4 and saved["skips"]["skipped_nonfinite"] == 1
    net = _net(seed)
    opt, sched = _optim(net)
    second = Trainer(
        model=net,
        step_fn=lambda b, s: StepOutput(loss=_loss(net, b)),
        optimizer=opt,
        scheduler=sched,
        loader=_batches(seed)[4:],
        cfg=TrainConfig(max_steps=STEPS, log_every=1, checkpoint_every=2),
        run_dir=tmp_path,
        dist=SINGLE,
        logger=MetricLogger(tmp_path, STEPS, start_step=4, enabled=False),
        config_dict={},
        start_step=4,
        skips=saved["skips"],
    )
    assert second.run().skipped_nonfinite == 2
