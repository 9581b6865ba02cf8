"""patches/minkowskiengine: every patch is documented, listed, applies without fuzz, and is installed.

The application check is the one tools/setup_env.sh makes (``patch -p1 --fuzz=0`` on the source
release); it runs where that release is in the cache (``~/.cache/pixvox/sdist`` or PIXVOX_CACHE),
which the setup script fills on its first build.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
PATCH_DIR = REPO / "patches" / "minkowskiengine"
HEADER_FIELDS = ("Subject", "Problem", "Fix", "Upstream", "Test")


def series() -> list[str]:
    lines = (PATCH_DIR / "series").read_text().splitlines()
    return [s for s in (line.split("#", 1)[0].strip() for line in lines) if s]


def header(patch: Path) -> dict[str, str]:
    """The header fields before the diff; continuation lines are indented."""
    text = patch.read_text().split("\ndiff --git ", 1)[0]
    fields: dict[str, str] = {}
    key = None
    for line in text.splitlines():
        m = re.match(r"^([A-Z][a-z]+):\s*(.*)$", line)
        if m:
            key = m.group(1)
            fields[key] = m.group(2)
        elif key and line.startswith(" "):
            fields[key] += " " + line.strip()
    return fields


def patch_set_hash() -> str:
    """What tools/setup_env.sh computes: sha256 of sdist.sha256, series and the patches, 16 hex digits."""
    h = hashlib.sha256()
    for name in ("sdist.sha256", "series", *series()):
        h.update((PATCH_DIR / name).read_bytes())
    return h.hexdigest()[:16]


def cached_sdist() -> Path:
    name = (PATCH_DIR / "sdist.sha256").read_text().split()[1]
    cache = Path(
        os.environ.get(
            "PIXVOX_CACHE", Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "pixvox"
        )
    )
    path = cache / "sdist" / name
    if not path.is_file():
        pytest.skip(f"{path} not cached: tools/setup_env.sh downloads it when it builds the engine")
    return path


@pytest.fixture(scope="module")
def patched_tree(tmp_path_factory) -> Path:
    """The source release with the whole series applied, as tools/setup_env.sh does it."""
    if shutil.which("patch") is None:
        pytest.skip("the patch program is not installed")
    sdist = cached_sdist()
    expected = (PATCH_DIR / "sdist.sha256").read_text().split()[0]
    assert hashlib.sha256(sdist.read_bytes()).hexdigest() == expected
    root = tmp_path_factory.mktemp("me")
    with tarfile.open(sdist) as tar:
        tar.extractall(root, filter="data")
    (src,) = root.iterdir()
    for name in series():
        proc = subprocess.run(
            [
                "patch",
                "-p1",
                "--forward",
                "--batch",
                "--fuzz=0",
                "--no-backup-if-mismatch",
                "-i",
                str(PATCH_DIR / name),
            ],
            cwd=src,
            capture_output=True,
            text=True,
        )
        assert proc.returncode == 0, f"{name} does not apply:\n{proc.stdout}{proc.stderr}"
    return src


def test_series_lists_every_patch_once_in_order():
    names = series()
    assert names, "empty series"
    assert sorted(p.name for p in PATCH_DIR.glob("*.patch")) == sorted(names)
    numbers = [int(n.split("-", 1)[0]) for n in names]
    assert numbers == sorted(set(numbers)), names
    for n in names:
        assert re.fullmatch(r"\d{4}-[a-z0-9.-]+\.patch", n), n


@pytest.mark.parametrize("name", series())
def test_patch_header_says_what_why_upstream_and_test(name):
    fields = header(PATCH_DIR / name)
    missing = [f for f in HEADER_FIELDS if not fields.get(f)]
    assert not missing, f"{name}: header lacks {missing}"
    assert "https://github.com/" in fields["Upstream"] or "no report" in fields["Upstream"], fields[
        "Upstream"
    ]
    # Every repository test the header names exists.
    for path in re.findall(r"\btests/[\w/]+\.py", fields["Test"]):
        assert (REPO / path).is_file(), f"{name} names {path}, which does not exist"


def test_every_patch_applies_without_fuzz(patched_tree):
    assert (patched_tree / "setup.py").is_file()


def test_patched_setup_py_has_no_side_effects(patched_tree, tmp_path):
    """Patch 0004: reading the package's metadata must not run pip or delete ./build."""
    fake_bin = tmp_path / "bin"
    fake_bin.mkdir()
    log = tmp_path / "pip_calls"
    (fake_bin / "pip").write_text(f'#!/bin/sh\necho "$@" >> {log}\n')
    (fake_bin / "pip").chmod(0o755)
    (patched_tree / "build").mkdir(exist_ok=True)
    (patched_tree / "build" / "keep").write_text("x")
    env = {**os.environ, "PATH": f"{fake_bin}:{os.environ['PATH']}"}
    proc = subprocess.run(
        [sys.executable, "setup.py", "--blas=openblas", "--cpu_only", "--name"],
        cwd=patched_tree,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.strip().splitlines()[-1] == "MinkowskiEngine"
    assert not log.exists(), f"setup.py ran pip: {log.read_text()}"
    assert (patched_tree / "build" / "keep").exists(), "setup.py removed ./build"


def test_installed_engine_carries_this_patch_set():
    from pixvox.sparse import ENGINE_PATCH_SET, ENGINE_PATCHES

    assert ENGINE_PATCHES == tuple(series()), (
        "rerun `bash tools/setup_env.sh`: the engine predates the series"
    )
    assert ENGINE_PATCH_SET == patch_set_hash(), (
        "rerun `bash tools/setup_env.sh`: a patch changed since the build"
    )
