#!/usr/bin/env python
"""Time one pretraining step and its parts; check that data loading overlaps compute.

Usage: python tools/bench_pretrain.py [CONFIG] [key=value ...] [--quick] [--steps N] [--json PATH]

Prints a table and writes JSON with ``step_seconds``, ``data_wait_fraction`` (time the step waited
for the DataLoader over wall time, with workers), ``split`` (seconds per part: data, matching,
teacher, student, loss, backward, optimizer; measured serially in the same run) and ``device``.
Default: the Quickstart config on its synthetic dataset (generated when absent).
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import torch  # noqa: E402

from pixvox.config import PretrainConfig, load_config  # noqa: E402
from pixvox.datasets.fusion import FusionPretrainDataset, collate_pretrain  # noqa: E402
from pixvox.engine.job_args import split_config_and_overrides  # noqa: E402
from pixvox.engine.optim import build_optimizer  # noqa: E402
from pixvox.engine.sampler import ResumableBatchSampler  # noqa: E402
from pixvox.losses import select_voxel_pairs  # noqa: E402
from pixvox.prep.ensure import ensure_pretrain_data  # noqa: E402
from pixvox.pretrain.model import PretrainNet  # noqa: E402
from pixvox.pretrain.step import PAIR_STREAM, PretrainStep, match_pixels, to_device  # noqa: E402


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"cpu: {platform.processor() or platform.machine()}, {torch.get_num_threads()} threads"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("config", nargs="?", default=str(REPO / "configs/pretrain/quickstart.yaml"))
    p.add_argument("overrides", nargs="*")
    p.add_argument("--quick", action="store_true", help="few steps (under two minutes on a 2-core CPU)")
    p.add_argument("--steps", type=int, default=None)
    p.add_argument("--json", default=None)
    a = split_config_and_overrides(p.parse_args(), str(REPO / "configs/pretrain/quickstart.yaml"))
    steps = a.steps or (3 if a.quick else 10)
    cfg = load_config(PretrainConfig, a.config, a.overrides)
    if cfg.data.synthetic.enabled:
        ensure_pretrain_data(cfg)
    device = torch.device("cuda" if torch.cuda.is_available() and cfg.train.device != "cpu" else "cpu")
    torch.manual_seed(0)
    net = PretrainNet(cfg).to(device).train()
    opt = build_optimizer(net.parameters(), cfg.optim)
    ds = FusionPretrainDataset(cfg.data.root, cfg.data, augment=True, input_kind=cfg.student.input)
    step_fn = PretrainStep(net, cfg, device)
    peak = 0.0

    # 1) Serial split of one step into its parts.
    sampler = ResumableBatchSampler(len(ds), cfg.train.batch_size, seed=0, max_steps=steps + 1)
    it = iter(sampler)
    parts = {k: 0.0 for k in ("data", "matching", "teacher", "student", "loss", "backward", "optimizer")}
    for s in range(steps + 1):
        t = time.perf_counter()
        batch = to_device(collate_pretrain([ds[k] for k in next(it)]), device)
        sync(device)
        t_data = time.perf_counter() - t
        t = time.perf_counter()
        m = match_pixels(batch, cfg.data.voxel_size, cfg.data.depth_min, cfg.data.depth_max)
        sync(device)
        t_match = time.perf_counter() - t
        t = time.perf_counter()
        fmap = net.teacher(batch["images"])
        sync(device)
        t_teacher = time.perf_counter() - t
        t = time.perf_counter()
        vox = net.student_features(batch["feats"], batch["coords"])
        sync(device)
        t_student = time.perf_counter() - t
        t = time.perf_counter()
        seeds = [int(x) ^ PAIR_STREAM for x in batch["seeds"]]
        pairs = select_voxel_pairs(m["voxel"], batch["voxel_offsets"], seeds, step_fn.quota)
        sel = pairs.pixel_index
        pf = fmap.permute(0, 2, 3, 1)[m["frame"][sel], m["v"][sel], m["u"][sel]]
        res = step_fn.ppkt(vox, pf, pairs.pair_voxel, pairs.pixel_pair, gather=False)
        sync(device)
        t_loss = time.perf_counter() - t
        t = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        res.loss.backward()
        sync(device)
        t_back = time.perf_counter() - t
        t = time.perf_counter()
        opt.step()
        sync(device)
        t_opt = time.perf_counter() - t
        if s == 0:
            continue  # warm-up
        for k, v in zip(parts, (t_data, t_match, t_teacher, t_student, t_loss, t_back, t_opt)):
            parts[k] += v / steps
    if device.type == "cuda":
        peak = torch.cuda.max_memory_allocated(device) / 2**30

    # 2) The real loop with DataLoader workers: how long does the step wait for data?
    loader = torch.utils.data.DataLoader(
        ds,
        batch_sampler=ResumableBatchSampler(len(ds), cfg.train.batch_size, seed=1, max_steps=steps + 1),
        collate_fn=collate_pretrain,
        num_workers=max(1, cfg.train.num_workers),
        prefetch_factor=4,
        pin_memory=device.type == "cuda",
    )
    wait = 0.0
    li = iter(loader)
    next(li)  # worker start-up is not part of the steady state
    t_all = time.perf_counter()
    for _ in range(steps):
        t = time.perf_counter()
        b = next(li)
        wait += time.perf_counter() - t
        out = step_fn(b, 0)
        opt.zero_grad(set_to_none=True)
        out.loss.backward()
        opt.step()
        sync(device)
    wall = time.perf_counter() - t_all
    result = {
        "device": device_name(device),
        "config": a.config,
        "overrides": a.overrides,
        "batch_size": cfg.train.batch_size,
        "image_size": list(ds[(0, 0)]["images"].shape[-2:]),
        "step_seconds": wall / steps,
        "data_wait_fraction": wait / wall,
        "split": parts,
        "frames_per_second": cfg.train.batch_size * steps / wall,
        "peak_gpu_memory_gib": peak,
        "steps": steps,
        "date": time.strftime("%Y-%m-%d"),
    }
    print(f"{'part':<12}{'seconds':>10}")
    for k, v in parts.items():
        print(f"{k:<12}{v:>10.3f}")
    print(f"{'serial sum':<12}{sum(parts.values()):>10.3f}")
    print(
        f"step with {loader.num_workers} loader worker(s): {result['step_seconds']:.3f} s, data wait "
        f"{100 * result['data_wait_fraction']:.1f}% of the step, {result['frames_per_second']:.2f} frames/s "
        f"on {result['device']}"
    )
    if a.json:
        Path(a.json).parent.mkdir(parents=True, exist_ok=True)
        Path(a.json).write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
