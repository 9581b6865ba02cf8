"""Named stage timers for profiling a training step; free when nothing records.

Code marks its stages, and a benchmark (``pixvox.bench.pretrain``) turns recording on around it::

    from pixvox.engine import timing

    with timing.stage("matching"):  # or timing.begin("matching") ... timing.end("matching"),
        ...                         # or @timing.timed("matching") on a function,
                                    # or timing.time_module(module, "student_forward")

    with timing.StageRecorder() as rec:  # only while a recorder is active do stages cost anything
        run_some_steps()
    rec.records  # [StageRecord(name, start, end, self_seconds, depth), ...]

With no active recorder, every mark costs one global read (:func:`stage` returns a shared no-op
context manager; :func:`begin`, :func:`end`, :func:`timed` and the hooks of :func:`time_module`
return at once), so the marks stay in production code. Stages nest; each record carries its *self* time (its duration minus that of the
stages opened inside it), so summing self times by name never counts a second twice, even when an
outer and an inner stage share a name. Times are ``time.perf_counter`` seconds; with
``sync_cuda=True`` every boundary waits for the GPU, so a stage owns the kernels it launched.
"""

from __future__ import annotations

import contextlib
import functools
import weakref
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from time import perf_counter
from typing import Any

import torch
from torch.optim.optimizer import register_optimizer_step_post_hook, register_optimizer_step_pre_hook

_active: StageRecorder | None = None
# Modules already timed, and under which names: several step objects may share one network.
_timed_modules: weakref.WeakKeyDictionary[torch.nn.Module, set[str]] = weakref.WeakKeyDictionary()


@dataclass(frozen=True)
class StageRecord:
    """One closed stage: ``start``/``end`` in ``perf_counter`` seconds, ``self_seconds`` excludes nested stages."""

    name: str
    start: float
    end: float
    self_seconds: float
    depth: int


class _NoStage:
    """The context manager :func:`stage` returns while nothing records."""

    __slots__ = ()

    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> bool:
        return False


_NO_STAGE = _NoStage()


class _Stage:
    __slots__ = ("recorder", "name")

    def __init__(self, recorder: StageRecorder, name: str) -> None:
        self.recorder, self.name = recorder, name

    def __enter__(self) -> None:
        self.recorder.begin(self.name)

    def __exit__(self, *exc: object) -> bool:
        self.recorder.end(self.name)
        return False


def stage(name: str) -> _Stage | _NoStage:
    """Context manager timing the enclosed code as stage ``name`` (a no-op unless a recorder is active)."""
    recorder = _active
    if recorder is None:
        return _NO_STAGE
    return _Stage(recorder, name)


def begin(name: str) -> None:
    """Open stage ``name`` (no-op unless a recorder is active); close it with :func:`end`."""
    recorder = _active
    if recorder is not None:
        recorder.begin(name)


def end(name: str) -> None:
    """Close stage ``name`` opened by :func:`begin` (no-op unless a recorder is active)."""
    recorder = _active
    if recorder is not None and any(entry[0] == name for entry in recorder._open):
        recorder.end(name)


def timed(name: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Decorator timing every call of the function as stage ``name`` (one global read while off)."""

    def wrap(fn: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(fn)
        def call(*args: Any, **kwargs: Any) -> Any:
            recorder = _active
            if recorder is None:
                return fn(*args, **kwargs)
            recorder.begin(name)
            try:
                return fn(*args, **kwargs)
            finally:
                recorder.end(name)

        return call

    return wrap


def active() -> StageRecorder | None:
    """The recorder currently collecting stages, or None."""
    return _active


class StageRecorder:
    """Collects :class:`StageRecord` s while active (``with recorder:``); one recorder at a time.

    Args:
        sync_cuda: wait for the current CUDA device at every stage boundary (GPU timing).
        clock: seconds, monotonic (tests pass a fake clock).
    """

    def __init__(self, sync_cuda: bool = False, clock: Callable[[], float] = perf_counter) -> None:
        self.sync_cuda = bool(sync_cuda) and torch.cuda.is_available()
        self.clock = clock
        self.records: list[StageRecord] = []
        # Open stages: [name, start, seconds spent in closed children].
        self._open: list[list[Any]] = []

    def _now(self) -> float:
        if self.sync_cuda:
            torch.cuda.synchronize()
        return self.clock()

    def begin(self, name: str) -> None:
        self._open.append([name, self._now(), 0.0])

    def end(self, name: str) -> None:
        """Close the innermost open stage called ``name`` (and, defensively, any left open inside it)."""
        now = self._now()
        if not any(entry[0] == name for entry in self._open):
            raise RuntimeError(f"timing: stage {name!r} ended but was never begun")
        while self._open:
            open_name, start, children = self._open.pop()
            duration = now - start
            depth = len(self._open)
            self.records.append(StageRecord(open_name, start, now, duration - children, depth))
            if self._open:
                self._open[-1][2] += duration
            if open_name == name:
                return

    def mark(self, name: str) -> None:
        """Record an instant (a zero-length stage), e.g. a step boundary."""
        now = self._now()
        self.records.append(StageRecord(name, now, now, 0.0, len(self._open)))

    def self_seconds(self, name: str) -> float:
        """Total self time of every record called ``name``."""
        return sum(r.self_seconds for r in self.records if r.name == name)

    def __enter__(self) -> StageRecorder:
        global _active
        if _active is not None:
            raise RuntimeError("timing: another StageRecorder is already active")
        _active = self
        return self

    def __exit__(self, *exc: object) -> bool:
        global _active
        _active = None
        self._open.clear()
        return False


def time_module(module: torch.nn.Module, name: str) -> list[torch.utils.hooks.RemovableHandle]:
    """Time every forward call of ``module`` as stage ``name`` (through forward hooks).

    The hooks do nothing while no recorder is active. A forward that raises leaves its stage open;
    the next enclosing :meth:`StageRecorder.end` closes it. Timing a module again under the same
    name adds nothing. Returns the new hook handles.
    """
    names = _timed_modules.setdefault(module, set())
    if name in names:
        return []
    names.add(name)

    def before(_module: torch.nn.Module, _args: Any) -> None:
        recorder = _active
        if recorder is not None:
            recorder.begin(name)

    def after(_module: torch.nn.Module, _args: Any, _output: Any) -> None:
        recorder = _active
        if recorder is not None and any(entry[0] == name for entry in recorder._open):
            recorder.end(name)

    return [module.register_forward_pre_hook(before), module.register_forward_hook(after)]


@contextlib.contextmanager
def optimizer_stage(name: str = "optimizer") -> Iterator[None]:
    """Time every ``optimizer.step()`` of every optimizer as stage ``name`` while the block runs.

    Uses torch's global optimizer step hooks, so the training loop needs no change; the hooks are
    removed on exit.
    """

    def before(*_args: Any) -> None:
        recorder = _active
        if recorder is not None:
            recorder.begin(name)

    def after(*_args: Any) -> None:
        recorder = _active
        if recorder is not None and any(entry[0] == name for entry in recorder._open):
            recorder.end(name)

    handles = [
        register_optimizer_step_pre_hook(before),
        register_optimizer_step_post_hook(after),
    ]
    try:
        yield
    finally:
        for h in handles:
            h.remove()
