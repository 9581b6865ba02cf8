"""pixvox.bench.pretrain: per-step stage split of the real pretraining job."""

from __future__ import annotations

import json
import tempfile

import pytest

from pixvox.bench import pretrain as bench
from pixvox.engine.timing import StageRecord
from tests.pretrain.conftest import REPO, tiny_overrides

CONFIG = str(REPO / "configs/pretrain/quickstart.yaml")


def rec(
    name: str, start: float, end: float, depth: int = 0, self_seconds: float | None = None
) -> StageRecord:
    return StageRecord(name, start, end, end - start if self_seconds is None else self_seconds, depth)


def test_split_steps_partitions_each_step_and_names_the_gaps():
    records = [
        rec("optimizer", 0.0, 1.0),  # end of step 0 (dropped: no start)
        rec("transfer", 1.5, 1.6),  # 0.5 s before it: the loop (data wait, logging)
        rec("student_forward", 1.7, 2.5, depth=1),
        rec("forward", 1.6, 3.0, self_seconds=0.6),
        rec("loss", 3.2, 3.5),  # 0.2 s untimed gap before it
        rec("optimizer", 4.5, 5.0),  # 1.0 s before it: backward
        rec("transfer", 5.25, 5.5),
        rec("optimizer", 6.0, 6.5),
    ]
    steps = bench.split_steps(records)
    assert len(steps) == 2
    first = steps[0]
    assert first["step"] == 4.0
    assert first["loop"] == 0.5 and first["backward"] == 1.0 and first["untimed"] == pytest.approx(0.2)
    assert first["student_forward"] == 0.8 and first["forward"] == 0.6 and first["optimizer"] == 0.5
    assert sum(v for k, v in first.items() if k != "step") == pytest.approx(first["step"])
    second = steps[1]
    assert second == pytest.approx(
        {"step": 1.5, "loop": 0.25, "transfer": 0.25, "backward": 0.5, "optimizer": 0.5, "untimed": 0.0}
    )


def test_data_wait_comes_out_of_the_loop_gap_unless_marked():
    steps = [{"step": 2.0, "loop": 0.5, "transfer": 1.5}]
    bench.add_data_waits(steps, [0.2])
    assert steps == [{"step": 2.0, "loop": pytest.approx(0.3), "transfer": 1.5, "data_wait": 0.2}]
    marked = [{"step": 2.0, "loop": 0.1, "data_wait": 0.4, "transfer": 1.5}]  # the loop marks its own
    bench.add_data_waits(marked, [0.2])
    assert marked == [{"step": 2.0, "loop": 0.1, "data_wait": 0.4, "transfer": 1.5}]


def test_bench_times_the_real_job(tiny_fusions, tmp_path, monkeypatch):
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))  # where the bench puts its run folder
    out = tmp_path / "bench.json"
    overrides = tiny_overrides(tiny_fusions, tmp_path, "ignored")
    result = bench.main([CONFIG, *overrides, "--steps", "3", "--warmup", "1", "--json", str(out)])
    assert json.loads(out.read_text()) == result
    stages = result["stages"]
    for name in (
        "transfer",
        "student_forward",
        "teacher_forward",
        "matching",
        "pairs",
        "loss",
        "backward",
        "optimizer",
    ):
        assert stages[name]["median"] > 0, name
    assert stages["student_forward"]["median"] > stages["matching"]["median"]  # sparse convs dominate
    medians = sum(s["median"] for s in stages.values())
    assert result["steps"] == 3 and result["step_seconds"] > 0
    assert 0.5 * result["step_seconds"] < medians < 1.5 * result["step_seconds"]
    assert 0.0 <= result["data_wait_fraction"] < 1.0
    assert result["frames_per_second"] == pytest.approx(4 / result["step_seconds"])
    # The temporary run folder is gone (torch may leave its own compile cache in the temp dir).
    assert not [p for p in scratch.iterdir() if p.name.startswith("pixvox_bench_pretrain_")]


def test_missing_data_names_the_command(tmp_path):
    with pytest.raises(SystemExit, match="--prepare-data"):
        bench.main(
            [
                CONFIG,
                f"data.root={tmp_path / 'nothing'}",
                "data.synthetic.enabled=false",
                "--json",
                str(tmp_path / "x.json"),
            ]
        )


def test_the_reported_threads_are_the_jobs_not_the_callers(tiny_fusions, tmp_path, monkeypatch):
    import torch

    scratch = tmp_path / "scratch"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    overrides = [*tiny_overrides(tiny_fusions, tmp_path, "ignored"), "train.cpu_threads=1"]
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        result = bench.main(
            [CONFIG, *overrides, "--steps", "1", "--warmup", "1", "--json", str(tmp_path / "b.json")]
        )
    finally:
        torch.set_num_threads(before)
    # the job ran at 1 thread and restored the caller's 2 afterwards; the report names the job's
    assert result["threads"] == 1
    assert "train.cpu_threads=1" in result["threads_rule"]
