"""A 20-step PPKT pretraining run on the synthetic room: the whole job (data loading, pixel matching,
teacher, student, InfoNCE loss, optimizer, checkpoint) on the device, with bf16 autocast on a GPU.

Pass: every logged loss is finite, the run reaches its last step and writes a checkpoint, and the
loss falls: the mean of the last five steps is below the mean of the first five. The batch is the
same two samples every step without augmentation, so the networks can fit it and the drop does not
hinge on which pairs a step happens to draw.
"""

from __future__ import annotations

import math
import os
import subprocess
import sys
from pathlib import Path

import torch

from pixvox.selftest.report import FAIL, PASS, CheckResult
from pixvox.selftest.synthetic import write_fusions

STEPS = 20
WINDOW = 5  #: steps averaged at each end to decide "falling"
VOXEL_SIZE = 0.1  #: metres
CHILD_TIMEOUT_S = 600  #: a 20-step run takes seconds on a GPU and well under a minute on 2 CPU cores


def smoke_config(data_root: Path, out_root: Path, device: torch.device, steps: int, seed: int) -> dict:
    """The run's config as a plain dict (every key given, so no repository config file is needed)."""
    return {
        "experiment": {"name": "smoke", "output_root": str(out_root), "seed": seed},
        "data": {
            "root": str(data_root),
            "voxel_size": VOXEL_SIZE,
            "holdout_every": 0,
            "image_size": [48, 64],
            "augment_2d": {"hflip": False, "resize_crop_scale": [1.0, 1.0], "color_jitter": 0.0},
            "augment_3d": {"rotate_gravity": False, "scale": [1.0, 1.0], "flip": False, "translate": 0.0},
        },
        "student": {"name": "Res16UNet14T"},
        "teacher": {"backbone": "efficientnet_lite0", "weights": "imagenet", "fpn_channels": 16},
        "loss": {"name": "ppkt", "embed_dim": 16, "num_pairs": 256, "temperature": 0.07},
        "optim": {"name": "adamw", "lr": 0.002, "weight_decay": 0.0001},
        "schedule": {"name": "constant", "warmup_steps": 0},
        "train": {
            "max_steps": steps,
            "batch_size": 2,
            "num_workers": 0,
            "device": device.type,
            "amp": "bf16" if device.type == "cuda" else "none",
            "log_every": 1,
            "checkpoint_every": steps,
            "keep_checkpoints": 1,
        },
        "logging": {"wandb": "disabled", "progress_bar": False},
    }


def judge_losses(losses: list[float], steps: int, window: int = WINDOW) -> tuple[bool, str]:
    """(passed, reason) for the per-step losses of a ``steps``-step run."""
    if len(losses) != steps:
        return False, f"{len(losses)} losses logged for {steps} steps"
    bad = [i + 1 for i, v in enumerate(losses) if not math.isfinite(v)]
    if bad:
        return False, f"non-finite loss at step(s) {bad[:5]}"
    first = sum(losses[:window]) / window
    last = sum(losses[-window:]) / window
    if not last < first:
        return (
            False,
            f"loss did not fall: mean of the first {window} steps {first:.4f}, of the last {last:.4f}",
        )
    return True, ""


def check_pretrain_smoke(device: torch.device, seed: int, workdir: Path, steps: int = STEPS) -> CheckResult:
    """Run the job in a child process (its logging, signal handlers and memory stay out of the
    self-test); its output goes to ``<workdir>/smoke.log``, quoted in the report on failure."""
    import yaml

    from pixvox.engine.logger import read_metrics

    data_root = workdir / "smoke_fusions"
    if not (data_root / "index.json").is_file():
        write_fusions(data_root, samples=2, frames_per_sample=2, image_size=(60, 80), voxel_size=VOXEL_SIZE)
    config = workdir / "smoke.yaml"
    config.write_text(yaml.safe_dump(smoke_config(data_root, workdir / "runs", device, steps, seed)))
    run_dir = workdir / "runs" / "smoke"
    log_path = workdir / "smoke.log"
    cmd = [sys.executable, "-m", "pixvox.pretrain.run", str(config), "--resume", "none"]
    env = dict(os.environ)
    if device.type == "cpu":
        # The run checks the job's wiring, not its speed (the op checks cover the threaded kernels): one
        # thread unless --threads says otherwise, since on a busy CPU OpenMP threads that wait on each
        # other made it ten times slower (360 s instead of 52 s on 2 shared cores).
        env.setdefault("OMP_NUM_THREADS", "1")
    with open(log_path, "w") as log:
        proc = subprocess.run(
            cmd, stdout=log, stderr=subprocess.STDOUT, env=env, timeout=CHILD_TIMEOUT_S, check=False
        )
    if proc.returncode != 0:
        tail = log_path.read_text().strip().splitlines()[-6:]
        return CheckResult(
            "pretrain_smoke",
            str(device),
            FAIL,
            f"exit code {proc.returncode}",
            detail=f"{' '.join(cmd)} failed; last lines of {log_path}: " + " | ".join(tail),
        )
    rows = [r for r in read_metrics(run_dir / "metrics.jsonl") if "loss" in r]
    losses = [float(r["loss"]) for r in rows]
    ok, reason = judge_losses(losses, steps)
    checkpoints = sorted((run_dir / "checkpoints").glob("step_*.pt"))
    if ok and not checkpoints:
        ok, reason = False, f"no checkpoint under {run_dir / 'checkpoints'}"
    n = max(1, min(WINDOW, len(losses)))
    first, last = sum(losses[:n]) / n, sum(losses[-n:]) / n
    figure = f"loss {first:.3f} -> {last:.3f} (first/last {WINDOW} of {len(losses)} steps)"
    s_per_step = sorted(float(r["s_per_step"]) for r in rows if "s_per_step" in r)
    if s_per_step:
        figure += f", {s_per_step[len(s_per_step) // 2]:.2f} s/step"
    data = {
        "losses": losses,
        "amp": "bf16" if device.type == "cuda" else "none",
        "threads": env.get("OMP_NUM_THREADS"),
        "log": str(log_path),
    }
    return CheckResult("pretrain_smoke", str(device), PASS if ok else FAIL, figure, detail=reason, data=data)
