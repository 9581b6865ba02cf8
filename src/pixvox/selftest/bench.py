"""The benchmarks in ``--quick`` form: ``pixvox.bench.backproject``, ``pixvox.bench.pretrain`` and
``pixvox.bench.sparse``, each a module with ``main(argv)`` taking ``--quick`` and ``--json PATH``.

A benchmark passes when it runs to the end and writes its JSON (each checks its own outputs against
its reference before timing); the figures are reported, not judged, since timings on a shared
machine are too noisy for a pass mark. A module that this install does not have is reported as
skipped, never as passed.
"""

from __future__ import annotations

import importlib
import io
import json
from collections.abc import Callable, Sequence
from contextlib import redirect_stdout
from pathlib import Path
from typing import Any

import torch

from pixvox.selftest.report import FAIL, PASS, SKIP, CheckResult


def _fmt(value: Any, spec: str) -> str:
    """``value`` formatted, or ``?`` where the benchmark did not report it."""
    ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    return format(value, spec) if ok else "?"


def _percent(value: Any) -> str:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    return f"{100 * value:.0f}%" if ok else "?"


def backproject_argv(device: torch.device, json_path: Path, workdir: Path) -> list[str]:
    return ["--quick", "--json", str(json_path), "--device", device.type]


def backproject_figure(r: dict[str, Any]) -> str:
    return (
        f"{_percent(r.get('bandwidth_fraction'))} of copy bandwidth, "
        f"{_fmt(r.get('speedup_vs_reference'), '.1f')}x reference"
    )


def pretrain_argv(device: torch.device, json_path: Path, workdir: Path) -> list[str]:
    # The smoke run's synthetic fusions (10 cm voxels), so the benchmark writes nothing into the
    # repository (read-only in containers) and generates no second dataset.
    root = workdir / "smoke_fusions"
    args = ["--quick", "--json", str(json_path)]
    if (root / "index.json").is_file():
        # Two samples there: no held-out split, and a batch that fits them.
        args += [
            f"data.root={root}",
            "data.synthetic.enabled=false",
            "data.voxel_size=0.1",
            "data.holdout_every=0",
            "train.batch_size=2",
        ]
    args.append(f"train.device={device.type}")
    return args


def pretrain_figure(r: dict[str, Any]) -> str:
    return (
        f"{_fmt(r.get('step_seconds'), '.3f')} s/step, {_fmt(r.get('frames_per_second'), '.1f')} frames/s, "
        f"data wait {_percent(r.get('data_wait_fraction'))}"
    )


def sparse_argv(device: torch.device, json_path: Path, workdir: Path) -> list[str]:
    return ["--quick", "--json", str(json_path)]


def sparse_figure(r: dict[str, Any]) -> str:
    """The benchmark's top-level numbers (its keys are its own)."""
    numbers = [(k, v) for k, v in r.items() if isinstance(v, (int, float)) and not isinstance(v, bool)]
    return ", ".join(f"{k} {v:.3g}" for k, v in numbers[:3]) or "see JSON"


#: check name → (module, argv builder, figure of its JSON)
BENCHMARKS: dict[str, tuple[str, Callable[[torch.device, Path, Path], list[str]], Callable[[dict], str]]] = {
    "bench.backproject": ("pixvox.bench.backproject", backproject_argv, backproject_figure),
    "bench.pretrain": ("pixvox.bench.pretrain", pretrain_argv, pretrain_figure),
    "bench.sparse": ("pixvox.bench.sparse", sparse_argv, sparse_figure),
}


def _import(module: str):
    """The module, or None when it (or its package) is not part of this install."""
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as err:
        if err.name is not None and module.startswith(err.name):
            return None
        raise


def run_benchmark(name: str, device: torch.device, workdir: Path) -> CheckResult:
    module_name, make_argv, figure_of = BENCHMARKS[name]
    module = _import(module_name)
    if module is None or not callable(getattr(module, "main", None)):
        return CheckResult(
            name, str(device), SKIP, detail=f"skipped: module not present ({module_name}.main)"
        )
    json_path = workdir / f"{name}.json"
    argv: Sequence[str] = make_argv(device, json_path, workdir)
    printed = io.StringIO()
    try:
        with redirect_stdout(printed):
            module.main(list(argv))
    except SystemExit as err:  # an argparse error or an explicit exit
        if err.code not in (0, None):
            return CheckResult(
                name, str(device), FAIL, f"exit {err.code}", detail=f"{module_name}.main({list(argv)}) exited"
            )
    if not json_path.is_file():
        return CheckResult(name, str(device), FAIL, detail=f"{module_name} wrote no JSON at {json_path}")
    result = json.loads(json_path.read_text())
    data = {"argv": list(argv), "result": result, "output_tail": printed.getvalue()[-2000:]}
    return CheckResult(name, str(device), PASS, figure_of(result), data=data)
