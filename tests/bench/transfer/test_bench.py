"""The whole benchmark on tiny synthetic data: its rows must not depend on how many processes ran
its tasks (evaluations beside training runs, fine-tunings after their pretraining run), and a rerun
reuses every run."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from pixvox.bench.transfer.bench import BenchOptions, run_bench

from .synthetic import pointcept_room, seven_scenes_sequence


@pytest.fixture(scope="module")
def tiny_inputs(tmp_path_factory) -> dict[str, list[str]]:
    base = tmp_path_factory.mktemp("bench_inputs")
    rng = np.random.default_rng(7)
    seven_scenes_sequence(base / "seqs" / "seq-01", 10, rng)
    rooms = {}
    for i, name in enumerate(["scene0000_00", "scene0011_00", "scene0025_00", "scene0046_02"]):
        pointcept_room(base / "rooms" / name, n=3000, seed=i)
        rooms[name] = str(base / "rooms" / name)
    return {
        "pretrain_data": [str(base / "seqs")],
        "train_rooms": [rooms["scene0000_00"], rooms["scene0011_00"]],
        "test_rooms": [rooms["scene0025_00"], rooms["scene0046_02"]],
    }


def _options(inputs: dict[str, list[str]], out: Path, jobs: int) -> BenchOptions:
    return BenchOptions(
        **inputs,
        arms=["ppkt", "random"],
        seeds=[0, 1],
        steps=2,
        finetune_budgets=[5],
        finetune_seeds=[1],
        finetune_steps=2,
        curve_points=1,
        probe_rows=0,
        out_dir=str(out),
        overrides=["train.num_workers=0", "loss.terms.ppkt.num_pairs=64"],
        jobs=jobs,
    )


def _rows(result: dict) -> dict:
    return {k: result[k] for k in ("probe", "convergence", "retrieval", "finetune")}


def test_rows_are_the_same_one_task_at_a_time_and_side_by_side(tiny_inputs, tmp_path):
    one = run_bench(_options(tiny_inputs, tmp_path / "one", 1))
    two = run_bench(_options(tiny_inputs, tmp_path / "two", 2))
    assert _rows(one) == _rows(two)
    assert [(r["arm"], r["seed"], r["reused"]) for r in two["runs"]] == [
        ("ppkt", 0, False),
        ("ppkt", 1, False),
    ]
    # what is compared is not a constant: the arms' and seeds' probes differ, every row is there
    probe = {(r["arm"], r["seed"], r["test_room"]): r["miou"] for r in two["probe"]}
    assert len(probe) == 8 and len(set(probe.values())) > 4
    assert [(r["arm"], r["seed"]) for r in two["retrieval"]] == [("ppkt", 0), ("ppkt", 1)]
    assert [(r["init"], r["budget"], r["seed"]) for r in two["finetune"]] == [
        ("scratch", 5, 1),
        ("ppkt", 5, 1),
    ]
    # a rerun finds every run finished and gives the same rows
    again = run_bench(_options(tiny_inputs, tmp_path / "two", 2))
    assert all(r["reused"] for r in again["runs"]) and _rows(again) == _rows(two)
