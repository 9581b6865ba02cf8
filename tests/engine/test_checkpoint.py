"""Checkpoints: atomic, newest-complete discovery, pruning, weights_only loading, RNG round trip."""

from __future__ import annotations

import random

import numpy as np
import pytest
import torch

from pixvox.engine import checkpoint as ckpt


def test_save_prune_latest_and_weights_only_load(tmp_path):
    d = tmp_path / "checkpoints"
    for step in (10, 20, 30, 40):
        ckpt.save_checkpoint(d, step, {"step": step, "w": torch.full((2,), float(step))}, keep=2)
    assert [p.name for p in ckpt.list_checkpoints(d)] == ["step_00000030.pt", "step_00000040.pt"]
    # A temporary file from a write that was killed is never taken for a checkpoint.
    (d / ".step_00000050.pt.tmp").write_bytes(b"partial")
    latest = ckpt.latest_checkpoint(d)
    assert latest.name == "step_00000040.pt"
    state = ckpt.load_checkpoint(latest)
    assert state["step"] == 40 and torch.equal(state["w"], torch.full((2,), 40.0))
    assert ckpt.resolve_resume("auto", d) == latest
    assert ckpt.resolve_resume(None, d) is None
    assert ckpt.resolve_resume("auto", tmp_path / "none") is None
    with pytest.raises(FileNotFoundError):
        ckpt.resolve_resume(str(tmp_path / "missing.pt"), d)


def test_the_next_save_removes_temp_files_a_killed_run_left(tmp_path):
    d = tmp_path / "checkpoints"
    ckpt.save_checkpoint(d, 2, {"step": 2})
    stale = d / ".step_00000004.pt.tmp-12345-abcdef01"  # kill -9 inside the write of step 4
    stale.write_bytes(b"x" * 1000)
    ckpt.save_checkpoint(d, 4, {"step": 4})
    assert sorted(p.name for p in d.iterdir()) == ["step_00000002.pt", "step_00000004.pt"]


def test_damaged_checkpoint_names_the_file(tmp_path):
    bad = tmp_path / "step_00000001.pt"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(RuntimeError, match="step_00000001.pt"):
        ckpt.load_checkpoint(bad)


def test_rng_state_round_trip_through_weights_only_file(tmp_path):
    ckpt.save_checkpoint(tmp_path, 1, {"rng": ckpt.rng_state()})
    expected = (random.random(), np.random.rand(), torch.rand(1).item())  # noqa: NPY002
    ckpt.set_rng_state(ckpt.load_checkpoint(ckpt.latest_checkpoint(tmp_path))["rng"])
    got = (random.random(), np.random.rand(), torch.rand(1).item())  # noqa: NPY002
    assert got == expected
