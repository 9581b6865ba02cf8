"""Stage timers: free when off, self times that partition the wall time, module and optimizer hooks."""

from __future__ import annotations

import pytest
import torch

from pixvox.engine import timing


class FakeClock:
    """A clock that only moves when told to, so every expected time is exact."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def test_stage_is_a_shared_no_op_without_a_recorder():
    assert timing.active() is None
    first, second = timing.stage("a"), timing.stage("b")
    assert first is second  # nothing is allocated per call while off
    with first:
        pass
    recorder = timing.StageRecorder()
    assert recorder.records == []


def test_nested_stages_record_self_time_and_depth():
    clock = FakeClock()
    with timing.StageRecorder(clock=clock) as rec:
        with timing.stage("outer"):
            clock.advance(2.0)
            with timing.stage("inner"):
                clock.advance(3.0)
            clock.advance(1.0)
            with timing.stage("inner"):
                clock.advance(0.5)
        clock.advance(4.0)
        with timing.stage("after"):
            clock.advance(0.25)
    by_name = {(r.name, r.start): r for r in rec.records}
    outer = by_name[("outer", 0.0)]
    assert (outer.end, outer.self_seconds, outer.depth) == (6.5, 3.0, 0)
    assert by_name[("inner", 2.0)].self_seconds == 3.0 and by_name[("inner", 2.0)].depth == 1
    assert rec.self_seconds("inner") == 3.5
    assert rec.self_seconds("after") == 0.25
    # Self times of everything inside the outer stage add up to its duration exactly.
    assert rec.self_seconds("outer") + rec.self_seconds("inner") == outer.end - outer.start
    assert timing.active() is None


def test_same_name_nested_is_not_counted_twice():
    clock = FakeClock()
    with timing.StageRecorder(clock=clock) as rec:
        with timing.stage("optimizer"):
            clock.advance(1.0)
            with timing.stage("optimizer"):
                clock.advance(2.0)
    assert rec.self_seconds("optimizer") == 3.0


def test_unbalanced_and_concurrent_use_raise():
    with timing.StageRecorder() as rec:
        with pytest.raises(RuntimeError, match="never begun"):
            rec.end("nothing")
        with pytest.raises(RuntimeError, match="already active"):
            with timing.StageRecorder():
                pass
    assert timing.active() is None


def test_stage_left_open_by_an_exception_is_closed_by_its_parent():
    clock = FakeClock()
    with timing.StageRecorder(clock=clock) as rec:
        rec.begin("outer")
        rec.begin("crashed")  # e.g. a forward hook whose forward raised
        clock.advance(1.0)
        rec.end("outer")
    assert {r.name for r in rec.records} == {"outer", "crashed"}
    assert rec.self_seconds("crashed") + rec.self_seconds("outer") == 1.0


def test_time_module_hooks_record_only_while_active():
    clock = FakeClock()

    class Slow(torch.nn.Module):
        def forward(self, x):
            clock.advance(0.5)
            return x * 2

    net = torch.nn.Sequential(Slow(), torch.nn.Identity())
    assert len(timing.time_module(net[0], "slow")) == 2
    assert timing.time_module(net[0], "slow") == []  # already timed under this name
    net(torch.ones(1))  # no recorder: hooks return at once
    with timing.StageRecorder(clock=clock) as rec:
        with timing.stage("forward"):
            net(torch.ones(1))
    assert rec.self_seconds("slow") == 0.5 and rec.self_seconds("forward") == 0.0
    assert [r.depth for r in rec.records if r.name == "slow"] == [1]


def test_optimizer_stage_times_every_step_and_removes_its_hooks():
    w = torch.nn.Parameter(torch.ones(3))
    opt = torch.optim.SGD([w], lr=0.1)
    with timing.StageRecorder() as rec:
        with timing.optimizer_stage():
            for _ in range(3):
                w.grad = torch.ones(3)
                opt.step()
        w.grad = torch.ones(3)
        opt.step()  # after the block: not timed
    assert [r.name for r in rec.records] == ["optimizer"] * 3
    assert torch.allclose(w.detach(), torch.full((3,), 0.6))


def test_begin_end_and_timed_decorator():
    clock = FakeClock()

    @timing.timed("work")
    def work(seconds: float) -> float:
        clock.advance(seconds)
        return seconds * 2

    assert work(1.0) == 2.0  # off: a plain call
    timing.begin("ignored")  # off: no-ops
    timing.end("ignored")
    with timing.StageRecorder(clock=clock) as rec:
        timing.begin("outer")
        assert work(0.5) == 1.0
        clock.advance(0.25)
        timing.end("outer")
        timing.end("never-begun")  # tolerated: the mark of a stage that did not start
    assert rec.self_seconds("work") == 0.5 and rec.self_seconds("outer") == 0.25
    assert work.__name__ == "work"
