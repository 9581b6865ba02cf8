"""End-to-end pretraining runs on tiny synthetic data: outputs, kill -9 + resume, 2 processes = 1."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from pixvox.comm import launch_local
from pixvox.engine.checkpoint import latest_checkpoint, load_checkpoint
from pixvox.engine.logger import read_metrics
from pixvox.pretrain.run import main

from .conftest import REPO, tiny_overrides

CONFIG = str(REPO / "configs/pretrain/quickstart.yaml")


def test_run_writes_config_metrics_checkpoints_curves_and_wandb(tiny_fusions, tmp_path):
    args = tiny_overrides(
        tiny_fusions, tmp_path, "e2e", **{"logging.wandb": "offline", "data.holdout_every": 3}
    )
    summary = main([CONFIG, *args, "--resume", "none"])
    run = tmp_path / "e2e"
    assert (run / "config.yaml").is_file() and "voxel_size: 0.1" in (run / "config.yaml").read_text()
    rows = read_metrics(run / "metrics.jsonl")
    train_rows = [r for r in rows if "loss" in r]
    assert [r["step"] for r in train_rows] == [1, 2, 3, 4]
    assert all(r["pairs"] > 4 and 0 <= r["acc"] <= 1 and r["loss"] > 0 for r in train_rows)
    assert any("eval_acc" in r for r in rows)
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == ["step_00000002.pt", "step_00000004.pt"]
    state = load_checkpoint(run / "checkpoints/step_00000004.pt")  # weights_only
    assert state["step"] == 4 and state["student_name"] == "Res16UNet14S"
    assert not any(".backbone." in f".{k}" for k in state["model"])  # frozen teacher weights not stored
    assert (run / "curves.png").stat().st_size > 1000
    assert json.loads((run / "summary.json").read_text())["steps"] == 4 == summary["steps"]
    offline = list((run / "wandb").glob("offline-run-*"))
    assert offline and list(offline[0].glob("run-*.wandb")), "no wandb offline run with logged data"


def _weights(run: Path) -> dict[str, torch.Tensor]:
    return load_checkpoint(latest_checkpoint(run / "checkpoints"))["model"]


def test_kill9_then_resume_equals_uninterrupted(tiny_fusions, tmp_path):
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    common = {"train.max_steps": 8, "train.checkpoint_every": 3}
    cmd = [sys.executable, str(REPO / "tools/pretrain.py"), CONFIG]
    subprocess.run(
        [*cmd, *tiny_overrides(tiny_fusions, tmp_path, "whole", **common)],
        check=True,
        env=env,
        cwd=REPO,
        capture_output=True,
    )

    args = [*cmd, *tiny_overrides(tiny_fusions, tmp_path, "killed", **common)]
    proc = subprocess.Popen(args, env=env, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    ck = tmp_path / "killed/checkpoints/step_00000003.pt"
    deadline = time.time() + 240
    while not ck.exists() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert ck.exists(), "the run ended before its first checkpoint"
    assert latest_checkpoint(tmp_path / "killed/checkpoints").name in ("step_00000003.pt", "step_00000006.pt")
    subprocess.run([*args, "--resume", "auto"], check=True, env=env, cwd=REPO, capture_output=True)

    whole, resumed = _weights(tmp_path / "whole"), _weights(tmp_path / "killed")
    assert whole.keys() == resumed.keys()
    for k in whole:
        assert torch.equal(whole[k], resumed[k]), k
    steps = [r["step"] for r in read_metrics(tmp_path / "killed/metrics.jsonl") if "loss" in r]
    assert steps == list(range(1, 9))  # no step logged twice after the resume


def test_sigterm_saves_and_exits_cleanly(tiny_fusions, tmp_path):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    args = [
        sys.executable,
        str(REPO / "tools/pretrain.py"),
        CONFIG,
        *tiny_overrides(
            tiny_fusions, tmp_path, "term", **{"train.max_steps": 500, "train.checkpoint_every": 1000}
        ),
    ]
    proc = subprocess.Popen(
        args, env=env, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    metrics = tmp_path / "term/metrics.jsonl"
    deadline = time.time() + 240
    while (not metrics.exists() or not metrics.read_text().strip()) and time.time() < deadline:
        time.sleep(0.05)
    proc.send_signal(signal.SIGTERM)
    out, _ = proc.communicate(timeout=240)
    assert proc.returncode == 0, out
    ck = latest_checkpoint(tmp_path / "term/checkpoints")
    assert ck is not None and 1 <= load_checkpoint(ck)["step"] < 500
    assert "STOPPED" in out


# SGD: Adam's per-weight normalization would blow float rounding in near-zero gradients up to lr-sized
# differences, hiding what this test checks (equal gradients). The FPN teacher head, not the
# Quickstart's linear one: it gives the processes the most 2D parameters (FPN, BatchNorm) to agree on.
TWO = {"train.max_steps": 3, "optim.name": "sgd", "optim.lr": 0.05, "teacher.head": "fpn"}


def _dist_worker(rank: int, root: str, out: str) -> None:
    main([CONFIG, *tiny_overrides(Path(root), Path(out), "two", **TWO), "--resume", "none"])


def test_two_gloo_processes_equal_one_process(tiny_fusions, tmp_path):
    main([CONFIG, *tiny_overrides(tiny_fusions, tmp_path, "one", **TWO), "--resume", "none"])
    launch_local(_dist_worker, 2, str(tiny_fusions), str(tmp_path))
    one = read_metrics(tmp_path / "one/metrics.jsonl")
    two = read_metrics(tmp_path / "two/metrics.jsonl")
    assert len(one) == len(two) == 3
    for a, b in zip(one, two):
        assert a["pairs"] == b["pairs"]
        assert a["grad_norm"] == pytest.approx(b["grad_norm"], rel=1e-4)
        assert a["loss"] == pytest.approx(b["loss"], rel=1e-4, abs=1e-5)
    w1, w2 = _weights(tmp_path / "one"), _weights(tmp_path / "two")
    assert w1.keys() == w2.keys()
    for k in w1:
        if w1[k].is_floating_point():
            torch.testing.assert_close(w1[k], w2[k], rtol=1e-4, atol=2e-5, msg=k)
