"""Two processes under torchrun take the same training step as one process.

The model is built exactly as the pretraining job builds it (:func:`build_model`: the job's seeding,
:class:`pixvox.pretrain.model.PretrainNet` and :func:`pixvox.engine.job.wrap_for_training`:
synchronized BatchNorm across processes, DistributedDataParallel). The one-process run takes one
SGD step on a batch of two scene samples; under torchrun each of two processes takes one sample.
BatchNorm runs in training mode, so the step matches only if the batch statistics are synchronized
(SyncBatchNorm over NCCL on GPUs, :class:`pixvox.comm.DistributedBatchNorm` over gloo on CPU) and
the gradients are averaged correctly. Compared: every parameter update and BatchNorm running
statistic, relative to its size in the one-process run.

Run as a module by torchrun (the worker side): ``python -m pixvox.selftest.distributed --out DIR``.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

import torch

from pixvox.selftest.report import FAIL, PASS, SKIP, CheckResult

WORLD = 2
LR = 0.1
#: largest allowed |update(2 processes) - update(1 process)| / max |update(1 process)| per tensor
#: (float32 sums in another order differ ~1e-6; unsynchronized BatchNorm differs ~1e-1)
REL_TOL = 1e-3
CHILD_TIMEOUT_S = 300


def ddp_config(device: torch.device, sync_bn: bool = True):
    """A pretraining config without a teacher (PointContrast), tiny student, float32."""
    from pixvox.config import PretrainConfig, load_config

    return load_config(
        PretrainConfig,
        None,
        [
            "loss.name=pointcontrast",
            "loss.embed_dim=8",
            "student.name=Res16UNet14T",
            f"train.device={device.type}",
            f"train.sync_bn={str(sync_bn).lower()}",
            "train.batch_size=2",
        ],
    )


def make_samples(seed: int) -> dict[str, list[torch.Tensor]]:
    """Two scene samples of the synthetic room at 10 cm: coordinates, colours, regression targets."""
    from pixvox.selftest.synthetic import render_room, scene_voxels

    out: dict[str, list[torch.Tensor]] = {"coords": [], "feats": [], "targets": []}
    gen = torch.Generator().manual_seed(seed)
    for i in range(WORLD):
        coords, colors = scene_voxels(render_room(2, 30, 40, seed=seed * 10 + i), 0.1)
        out["coords"].append(coords)
        out["feats"].append(colors.float() / 255 - 0.5)
        out["targets"].append(torch.randn(coords.shape[0], 8, generator=gen))
    return out


def train_step(
    model: torch.nn.Module,
    samples: dict[str, list[torch.Tensor]],
    rows: Sequence[int],
    total_rows: int,
    world: int,
    device: torch.device,
) -> None:
    """One SGD step on the samples ``rows``; the loss is normalized so that DDP's gradient average
    over ``world`` processes equals the one-process gradient of the whole batch."""
    from pixvox.sparse import batched_coordinates

    coords = batched_coordinates([samples["coords"][i] for i in rows], device)
    feats = torch.cat([samples["feats"][i] for i in rows]).to(device)
    target = torch.cat([samples["targets"][i] for i in rows]).to(device)
    model.train()
    out = model({"feats": feats, "coords": coords})["voxel_feats"]
    loss = ((out - target) ** 2).sum() * (world / total_rows)
    opt = torch.optim.SGD(model.parameters(), lr=LR)
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()


def state(net: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().cpu().clone() for k, v in net.state_dict().items() if v.is_floating_point()}


def compare_states(
    before: dict[str, torch.Tensor], single: dict[str, torch.Tensor], multi: dict[str, torch.Tensor]
) -> tuple[float, str]:
    """Worst relative difference of the updates (after - before) over tensors, and that tensor's name."""
    worst, name = 0.0, ""
    for k, b in before.items():
        if k not in multi:
            return float("inf"), f"{k} missing from the 2-process state"
        step = (single[k] - b).abs().max().item()
        if step == 0.0:
            continue  # a tensor this step does not move (e.g. an unused bias)
        rel = (multi[k] - single[k]).abs().max().item() / step
        if not rel <= worst:
            worst, name = rel, k
    return worst, name


def run_worker(argv: Sequence[str] | None = None) -> None:
    """torchrun side: every rank takes its own sample; each rank saves its state after the step."""
    p = argparse.ArgumentParser()
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--device", default="cpu")
    p.add_argument("--no-sync-bn", action="store_true")
    a = p.parse_args(argv)
    from pixvox.comm import init_distributed

    torch.set_num_threads(1)
    cfg = ddp_config(torch.device(a.device), sync_bn=not a.no_sync_bn)
    dist = init_distributed(cfg.train.device)
    if dist.world_size != WORLD:
        raise SystemExit(f"expected {WORLD} processes, got {dist.world_size}")
    samples = torch.load(a.out / "samples.pt", weights_only=True)
    total = sum(c.shape[0] for c in samples["coords"])
    net, model = build_model(cfg, dist)
    train_step(model, samples, [dist.rank], total, dist.world_size, dist.device)
    torch.save(state(net), a.out / f"after_rank{dist.rank}.pt")
    torch.distributed.destroy_process_group()


def build_model(cfg, dist) -> tuple[torch.nn.Module, torch.nn.Module]:
    """The network and the module that trains, built by the pretraining job itself
    (:meth:`pixvox.engine.job.TrainingJob.build_model`: seed, network, BatchNorm sync, DDP)."""
    from pixvox.engine.threads import ThreadChoice
    from pixvox.pretrain.run import PretrainJob

    job = PretrainJob(cfg, dist, ThreadChoice(torch.get_num_threads(), "config", 1, "selftest", 0))
    model = job.build_model()
    return job.net, model


def check_ddp(device: torch.device, seed: int, workdir: Path, sync_bn: bool = True) -> CheckResult:
    """The torchrun step against the one-process step on ``device`` (``cuda`` needs 2 GPUs)."""
    from pixvox.comm import DistInfo

    label = f"{device.type} x{WORLD}"
    if device.type == "cuda" and torch.cuda.device_count() < WORLD:
        return CheckResult(
            "ddp_2proc",
            label,
            SKIP,
            detail=f"needs {WORLD} visible GPUs, {torch.cuda.device_count()} visible",
        )
    out = workdir / f"ddp_{device.type}"
    out.mkdir(parents=True, exist_ok=True)
    samples = make_samples(seed)
    torch.save(samples, out / "samples.pt")
    total = sum(c.shape[0] for c in samples["coords"])

    one = DistInfo(rank=0, local_rank=0, world_size=1, device=torch.device(device.type), backend=None)
    net, model = build_model(ddp_config(device, sync_bn), one)
    before = state(net)
    train_step(model, samples, list(range(WORLD)), total, 1, one.device)
    single = state(net)

    log_path = out / "torchrun.log"
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        f"--nproc-per-node={WORLD}",
        "-m",
        "pixvox.selftest.distributed",
        "--out",
        str(out),
        "--device",
        device.type,
    ]
    if not sync_bn:
        cmd.append("--no-sync-bn")
    env = {**os.environ, "OMP_NUM_THREADS": "1"}  # two processes share the cores
    with open(log_path, "w") as log:
        proc = subprocess.run(
            cmd, stdout=log, stderr=subprocess.STDOUT, env=env, timeout=CHILD_TIMEOUT_S, check=False
        )
    if proc.returncode != 0:
        tail = " | ".join(log_path.read_text().strip().splitlines()[-5:])
        return CheckResult(
            "ddp_2proc", label, FAIL, f"exit code {proc.returncode}", detail=f"torchrun failed: {tail}"
        )
    ranks = [torch.load(out / f"after_rank{r}.pt", weights_only=True) for r in range(WORLD)]
    worst, where = compare_states(before, single, ranks[0])
    agree, where_ranks = compare_states(before, ranks[0], ranks[1])
    ok = worst <= REL_TOL and agree <= REL_TOL
    figure = f"max rel diff {worst:.1e} vs 1 proc (tol {REL_TOL:.0e}), ranks {agree:.1e}"
    detail = (
        ""
        if ok
        else (
            f"2-process step differs from 1 process at {where} ({worst:.2e})"
            if worst > REL_TOL
            else f"the ranks disagree at {where_ranks} ({agree:.2e})"
        )
    )
    data = {"max_rel_diff": worst, "worst_tensor": where, "rank_disagreement": agree, "sync_bn": sync_bn}
    return CheckResult("ddp_2proc", label, PASS if ok else FAIL, figure, detail=detail, data=data)


if __name__ == "__main__":
    run_worker()
