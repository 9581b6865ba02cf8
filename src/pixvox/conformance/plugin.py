"""pytest plugin that runs the engine's upstream suite: shims, GPU skips, exclusions, the summary.

Loaded by :mod:`pixvox.conformance.__main__` with ``-p pixvox.conformance.plugin``; the run
directory (the current directory) already holds the room scan ``1.ply``. Every collected test ends
in one of: passed, failed, skipped (with the reason) or excluded (with the reason from
:mod:`pixvox.conformance.exclusions`). The summary is printed at the end and, with ``--me-report``,
written as JSON.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path

import pytest

from pixvox.conformance import exclusions, gpu, harness

OUTCOMES = ("passed", "failed", "skipped", "excluded")
GPU_ONLY_REASON = "GPU-only: returns without testing anything where no GPU is visible"
NEEDS_GPU_REASON = "needs a CUDA GPU (creates CUDA tensors); none is visible to torch"
CPU_PART_REASON = "CPU part passed; stopped at its unguarded CUDA part (needs a GPU)"
#: What torch and the engine raise when CUDA is used on a machine (or build) without it.
NO_CUDA_MESSAGES = (
    "Torch not compiled with CUDA enabled",
    "Found no NVIDIA driver",
    "No CUDA GPUs are available",
    "Cannot access accelerator device when none is available",
    "CPU_ONLY",
    "has no attribute 'CoordinateMapManagerGPU",  # a CPU_ONLY engine build has no GPU map classes
)
_CPU_PART = pytest.StashKey[bool]()


def is_no_cuda_error(exc: BaseException) -> bool:
    """Whether ``exc`` says only that CUDA is not available (not that the engine computed wrong)."""
    return any(m in str(exc) for m in NO_CUDA_MESSAGES)


@dataclass
class Result:
    test: str  # node id below tests/python/, e.g. "dense.py::TestDense::test_empty"
    outcome: str  # one of OUTCOMES
    reason: str = ""  # why it was skipped or excluded; the error line of a failure
    seconds: float = 0.0


def short_id(nodeid: str) -> str:
    """``tests/python/dense.py::TestDense::test_empty`` → ``dense.py::TestDense::test_empty``."""
    return nodeid.split("tests/python/", 1)[-1]


def _reason(report: pytest.TestReport) -> str:
    for key, value in report.user_properties:
        if key == "pixvox_reason":
            return str(value)
    if report.skipped and isinstance(report.longrepr, tuple):
        return str(report.longrepr[2]).removeprefix("Skipped: ")
    if report.failed:
        crash = getattr(report.longrepr, "reprcrash", None)
        text = crash.message if crash is not None else str(report.longrepr)
        return text.strip().splitlines()[0] if text.strip() else "failed"
    return ""


@dataclass
class Recorder:
    """Collects one :class:`Result` per test and prints / writes the summary."""

    suite: str
    report_path: str | None = None
    notes: list[str] = field(default_factory=list)
    excluded: dict[str, str] = field(default_factory=dict)
    results: dict[str, Result] = field(default_factory=dict)

    def counts(self) -> dict[str, int]:
        out = dict.fromkeys(OUTCOMES, 0)
        for r in self.results.values():
            out[r.outcome] += 1
        return out

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if not (report.when == "call" or report.skipped or report.failed):
            return
        test = short_id(report.nodeid)
        prev = self.results.get(test)
        if prev is not None and prev.outcome != "passed":
            return  # keep the first non-pass: a teardown error after a failed call adds nothing
        outcome, reason = report.outcome, _reason(report)
        if outcome == "skipped" and test in self.excluded:
            outcome, reason = "excluded", self.excluded[test]
        self.results[test] = Result(test, outcome, reason, round(report.duration, 3))

    def pytest_terminal_summary(self, terminalreporter) -> None:
        tr = terminalreporter
        tr.section("MinkowskiEngine conformance")
        tr.write_line(f"suite: {self.suite}")
        for note in self.notes:
            tr.write_line(f"harness shim: {note}")
        for outcome in ("failed", "excluded", "skipped"):
            rows = sorted((r for r in self.results.values() if r.outcome == outcome), key=lambda r: r.test)
            if rows:
                tr.write_line(f"{outcome}:")
                for r in rows:
                    tr.write_line(f"  {r.test}: {r.reason}")
        counts = self.counts()
        tr.write_line(" | ".join(f"{k} {v}" for k, v in counts.items()), bold=True)
        if self.report_path:
            from pixvox.io.atomic import atomic_write_json

            atomic_write_json(
                Path(self.report_path),
                {
                    "suite": self.suite,
                    "counts": counts,
                    "harness_shims": self.notes,
                    "not_collected": exclusions.NOT_TESTS,
                    "results": [asdict(r) for r in sorted(self.results.values(), key=lambda r: r.test)],
                },
            )


_RECORDER = pytest.StashKey[Recorder]()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("pixvox-conformance", "MinkowskiEngine conformance (pixvox)")
    group.addoption("--me-suite", default=None, help="folder holding the suite's tests/python")
    group.addoption("--me-report", default=None, help="write the results as JSON to this file")
    group.addoption(
        "--me-run-excluded", action="store_true", help="also run the excluded tests, to re-check them"
    )


def pytest_configure(config: pytest.Config) -> None:
    suite = config.getoption("--me-suite")
    if suite is None:
        raise pytest.UsageError("--me-suite is required: the folder holding the engine's tests/python")
    if not Path(harness.SCAN_NAME).is_file():
        raise pytest.UsageError(
            f"./{harness.SCAN_NAME} is missing: run the suite through `python -m pixvox.conformance`, "
            "which writes it from a real room before the suite's common.py would download one"
        )
    recorder = Recorder(suite=str(Path(suite).resolve()), report_path=config.getoption("--me-report"))
    recorder.notes = harness.install_import_shims(Path(recorder.suite))
    recorder.notes.append(
        f"LEAK_TEST_ITER: soak loops shortened to {exclusions.LEAK_TEST_ITER} iterations "
        "(upstream 100,000 and 10,000,000)"
    )
    config.stash[_RECORDER] = recorder
    config.pluginmanager.register(recorder, "pixvox-conformance-recorder")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    import torch

    recorder = config.stash[_RECORDER]
    has_gpu = torch.cuda.is_available()
    run_excluded = config.getoption("--me-run-excluded")
    for item in items:
        module = getattr(item, "module", None)
        if module is not None and hasattr(module, "LEAK_TEST_ITER"):
            module.LEAK_TEST_ITER = exclusions.LEAK_TEST_ITER
        test = short_id(item.nodeid)
        if test in exclusions.EXCLUDED and not run_excluded:
            recorder.excluded[test] = exclusions.EXCLUDED[test]
            item.add_marker(pytest.mark.skip(reason=f"excluded: {exclusions.EXCLUDED[test]}"))
            continue
        if has_gpu:
            continue
        kind = gpu.classify(item.obj)
        if kind == gpu.GPU_ONLY:
            item.add_marker(pytest.mark.skip(reason=GPU_ONLY_REASON))
        elif kind == gpu.UNGUARDED:
            item.add_marker(pytest.mark.skip(reason=NEEDS_GPU_REASON))
        elif kind == gpu.CPU_THEN_GPU:
            item.stash[_CPU_PART] = True


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    """A CPU-then-GPU test whose only failure is "no CUDA" passed its CPU part: report it so."""
    outcome = yield
    report = outcome.get_result()
    if (
        call.when == "call"
        and item.stash.get(_CPU_PART, False)
        and report.failed
        and call.excinfo is not None
        and is_no_cuda_error(call.excinfo.value)
    ):
        report.outcome = "passed"
        report.longrepr = None
        report.user_properties.append(("pixvox_reason", CPU_PART_REASON))
