"""tools/run_tests.sh passes pytest's exit status through, 5 ("no tests collected") included
(issue 14 item 5): a selection that runs nothing must not pass CI."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def _fake_repo(tmp_path: Path) -> Path:
    """The script in a repository whose setup step does nothing (no environment is built)."""
    (tmp_path / "tools").mkdir()
    shutil.copy(REPO / "tools/run_tests.sh", tmp_path / "tools/run_tests.sh")
    (tmp_path / "tools/setup_env.sh").write_text("exit 0\n")
    (tmp_path / "test_one.py").write_text("def test_one():\n    assert True\n")
    return tmp_path


def _run(repo: Path, *args: str) -> int:
    env = {**os.environ, "PIXVOX_NO_VENV": "1", "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
    cmd = ["bash", "tools/run_tests.sh", "-q", "-p", "no:cacheprovider", *args]
    return subprocess.run(cmd, cwd=repo, env=env, capture_output=True).returncode


def test_no_tests_collected_fails(tmp_path):
    repo = _fake_repo(tmp_path)
    assert _run(repo, "test_one.py", "-k", "no_test_has_this_name") == 5
    assert _run(repo, "test_one.py") == 0
