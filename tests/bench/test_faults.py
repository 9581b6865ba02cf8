"""The fault campaign's machinery (pixvox.bench.faults): the output scanner can fail, a small slice runs."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import torch

from pixvox.bench.faults import kills
from pixvox.bench.faults.cases import CASES, Context
from pixvox.bench.faults.judge import run_case
from pixvox.bench.faults.procs import scan_outputs


def _run_folder(root: Path, rng: np.random.Generator) -> Path:
    (root / "checkpoints").mkdir(parents=True)
    torch.save(
        {"step": 2, "model": {"w": torch.from_numpy(rng.normal(size=(4, 3)))}},
        root / "checkpoints/step_00000002.pt",
    )
    (root / "index.json").write_text(json.dumps({"samples": [1, 2]}))
    np.savez(root / "sample.npz", a=rng.normal(size=(50, 3)))
    (root / "metrics.jsonl").write_text('{"step": 1, "loss": 1.0}\n')
    return root


def test_scan_finds_partial_and_changed_files_and_ignores_temp_files(tmp_path, seed):
    rng = np.random.default_rng(seed)
    ref = _run_folder(tmp_path / "ref", rng)
    trial = tmp_path / "trial"
    shutil.copytree(ref, trial)
    assert scan_outputs(trial, ref).partial == []
    state = torch.load(trial / "checkpoints/step_00000002.pt", weights_only=True)
    state["model"]["w"][1, 2] = torch.nextafter(
        state["model"]["w"][1, 2], torch.tensor(np.inf, dtype=torch.float64)
    )
    torch.save(state, trial / "checkpoints/step_00000002.pt")  # one ulp away from the reference
    data = (trial / "sample.npz").read_bytes()
    (trial / "sample.npz").write_bytes(data[: len(data) // 2])  # truncated under its final name
    with open(trial / "metrics.jsonl", "a") as f:
        f.write('{"step": 2, "lo')  # a line cut by a kill
    (trial / ".index.json.tmp-1-abcd").write_text("{")  # an interrupted atomic write: not read by anyone
    scan = scan_outputs(trial, ref)
    assert scan.temp_files == 1
    assert sorted(p.split(":")[0] for p in scan.partial) == [
        "checkpoints/step_00000002.pt",
        "metrics.jsonl",
        "sample.npz",
    ]


def test_a_small_slice_of_the_campaign(shared_data, tmp_path):
    """2 kill points of `pixvox prep synthetic` (one in time, one inside an atomic write), then 3 bad inputs."""
    data = tmp_path / "data"
    args = [
        "prep",
        "synthetic",
        "--out",
        str(data),
        "--scenes",
        "1",
        "--frames",
        "3",
        "--image-size",
        "60x80",
    ]
    w = kills.Workload("prepare", args, data, tmp_path / "data_ref", "*", kills.DATA_DELAY, 12, None)
    kills.run_reference(w, tmp_path)
    trials = kills.run_trials(w, 2, tmp_path, np.random.default_rng(0), log=lambda _: None)
    assert len(trials) == 2 and {t["mode"] for t in trials} == {"time", "write"}
    for t in trials:
        assert t["final_identical"] and t["resume_returncode"] == 0, t
        assert t["after_kill"]["partial"] == [], t
    ctx = Context(shared_data, tmp_path / "cases")
    picked = [c for c in CASES if c.reader.startswith("pixvox prep scannet")][:3]
    results = [run_case(c, ctx, i) for i, c in enumerate(picked)]
    assert all(r["clean"] for r in results), results
    assert {r["input"] for r in results} >= {"truncated .sens"}
