"""Run MinkowskiEngine's own test suite against the installed engine: ``python -m pixvox.conformance``.

Writes the room scan into a fresh run folder, runs pytest there with
:mod:`pixvox.conformance.plugin`, prints passed / failed / skipped / excluded with a reason for every
test that did not run, and exits non-zero when a test failed. ``tools/me_conformance.sh`` wraps it.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
from pathlib import Path

from pixvox.conformance import exclusions, harness

DEFAULT_SUITE = "../shared/third_party/minkowskiengine_tests"
DEFAULT_ROOM = "scannet_pointcept/scene0011_00"


def default_room() -> str:
    data = os.environ.get("PIXVOX_SHARED_DATA", "../shared/data")
    return str(Path(data) / DEFAULT_ROOM)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m pixvox.conformance", description=__doc__.splitlines()[0])
    p.add_argument(
        "--suite",
        default=os.environ.get("PIXVOX_ME_TESTS", DEFAULT_SUITE),
        help="folder with the engine's tests/python (default: $PIXVOX_ME_TESTS or %(default)s)",
    )
    p.add_argument(
        "--room",
        default=None,
        help="a real room in the Pointcept layout (coord.npy, color.npy) that replaces the suite's "
        f"downloaded scan (default: $PIXVOX_SHARED_DATA/{DEFAULT_ROOM} or ../shared/data/{DEFAULT_ROOM})",
    )
    p.add_argument("--report", default=None, help="also write the results as JSON to this file")
    p.add_argument("--run-excluded", action="store_true", help="run the excluded tests too")
    p.add_argument("--keep", action="store_true", help="keep the run folder (prints its path)")
    p.add_argument("pytest_args", nargs="*", help="extra pytest arguments, after --")
    return p.parse_args(argv)


def suite_modules(suite: Path) -> list[Path]:
    """Every module of ``tests/python`` except those that hold no test case."""
    folder = suite / "tests" / "python"
    if not folder.is_dir():
        raise FileNotFoundError(
            f"{folder} not found: --suite must hold the engine's tests/python (the tests/python folder "
            "of NVIDIA/MinkowskiEngine); set PIXVOX_ME_TESTS or pass --suite"
        )
    return sorted(f for f in folder.glob("*.py") if f.name not in exclusions.NOT_TESTS)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    suite = Path(args.suite).resolve()
    room = Path(args.room or default_room()).resolve()
    try:
        files = suite_modules(suite)
    except FileNotFoundError as err:
        print(f"[me_conformance] error: {err}", file=sys.stderr)
        return 2
    import pytest

    run_dir = Path(tempfile.mkdtemp(prefix="pixvox-me-conformance-"))
    try:
        n = harness.write_room_ply(room, run_dir / harness.SCAN_NAME)
        print(f"[me_conformance] {harness.SCAN_NAME}: {n} points of the real room {room}")
    except (FileNotFoundError, ValueError) as err:
        print(f"[me_conformance] error: {err}", file=sys.stderr)
        shutil.rmtree(run_dir, ignore_errors=True)
        return 2
    (run_dir / "pytest.ini").write_text("[pytest]\n")
    pytest_args = [
        *map(str, files),
        "-c",
        str(run_dir / "pytest.ini"),
        "--rootdir",
        str(suite),
        "-p",
        "no:cacheprovider",
        "-p",
        "pixvox.conformance.plugin",
        "--me-suite",
        str(suite),
        "-q",
        "-rN",
        "--tb=line",
        "-W",
        "ignore::DeprecationWarning",
        *(["--me-report", str(Path(args.report).resolve())] if args.report else []),
        *(["--me-run-excluded"] if args.run_excluded else []),
        *args.pytest_args,
    ]
    cwd = Path.cwd()
    os.chdir(run_dir)
    try:
        code = pytest.main(pytest_args)
    finally:
        os.chdir(cwd)
        if args.keep:
            print(f"[me_conformance] run folder kept: {run_dir}")
        else:
            shutil.rmtree(run_dir, ignore_errors=True)
    return int(code)


if __name__ == "__main__":
    sys.exit(main())
