"""One entry per preparer: ``python -m pixvox.prep <dataset>`` dispatches to each module's parser, the
data_prep/ scripts are thin shims over it, and the package never reaches into data_prep/."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest

from pixvox.prep.cli import ALIASES, PREPARERS, main

from .conftest import REPO

SHIMS = sorted(p for p in (REPO / "data_prep").glob("*.py") if not p.name.startswith("_"))


@pytest.mark.parametrize("name", [*PREPARERS, *ALIASES])
def test_each_dataset_has_its_parser(name, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main([name, "-h"])
    assert exit_info.value.code == 0
    assert f"pixvox.prep {ALIASES.get(name, name)}" in capsys.readouterr().out


def test_usage_and_unknown_dataset(capsys):
    assert main([]) == 2 and "datasets:" in capsys.readouterr().out
    assert main(["--help"]) == 0
    assert main(["scanet", "--out", "x"]) == 2
    err = capsys.readouterr().err
    assert "unknown dataset 'scanet'" in err and "scannet" in err


def test_package_never_names_data_prep():
    hits = [
        f"{p.relative_to(REPO)}:{i}"
        for p in sorted((REPO / "src").rglob("*.py"))
        for i, line in enumerate(p.read_text().splitlines(), start=1)
        if "data_prep" in line
    ]
    assert hits == [], f"the package refers to data_prep/: {hits}"
    imports = re.compile(r"^\s*(from|import)\s+data_prep\b", re.M)
    users = [
        str(p.relative_to(REPO))
        for d in ("tools", "tests")
        for p in (REPO / d).rglob("*.py")
        if imports.search(p.read_text())
    ]
    assert users == [], f"these import data_prep/ instead of pixvox.prep: {users}"


@pytest.mark.parametrize("script", SHIMS, ids=lambda p: p.name)
def test_data_prep_scripts_are_thin_shims(script):
    text = script.read_text()
    assert len(text.splitlines()) <= 10
    for banned in ("sys.path", "pixvox.engine", "pixvox.config", "import pixvox"):
        assert banned not in text, f"{script.name} holds {banned!r}"
    proc = subprocess.run(
        [sys.executable, str(script), "-h"], capture_output=True, text=True, cwd=REPO.parent
    )
    assert proc.returncode == 0, proc.stderr
    assert "usage: pixvox.prep " in proc.stdout


def test_shim_without_pixvox_says_how_to_set_up(tmp_path):
    # -S: no site-packages, as in an interpreter where pixvox is not installed.
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    proc = subprocess.run(
        [sys.executable, "-S", str(REPO / "data_prep" / "synthetic.py"), "--out", str(tmp_path)],
        capture_output=True,
        text=True,
        env=env,
    )
    assert proc.returncode == 1
    assert "cannot import pixvox" in proc.stderr and "bash tools/setup_env.sh" in proc.stderr
    assert "Traceback" not in proc.stderr and not any(tmp_path.iterdir())
