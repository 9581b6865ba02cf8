"""Every shell script is valid bash and passes shellcheck; docs/cluster.md names only existing files."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.packaging.common import CLUSTER_DOC, REPO, SBATCH


def test_cluster_doc_names_only_existing_repository_files():
    text = CLUSTER_DOC.read_text()
    named = set(re.findall(r"(?<![\w/.-])((?:tools|docs|tests|configs|data_prep|src)/[\w./-]*\w)", text))
    named |= {n for n in ("Dockerfile", ".dockerignore", "environment.yml", "setup.py") if n in text}
    assert {"tools/slurm_pretrain.sbatch", "tools/setup_env.sh", "tools/pretrain.sh"} <= named
    missing = sorted(n for n in named if not (REPO / n).exists())
    assert missing == [], f"docs/cluster.md names files that do not exist: {missing}"


def test_sbatch_script_is_valid_bash():
    subprocess.run(["bash", "-n", str(SBATCH)], check=True)


SHELL_SCRIPTS = sorted(str(p.relative_to(REPO)) for p in [*REPO.glob("tools/*.sh"), REPO / ".ci/run", SBATCH])


@pytest.mark.parametrize("script", SHELL_SCRIPTS)
def test_shell_scripts_pass_shellcheck(script):
    shellcheck = shutil.which("shellcheck") or str(Path(sys.executable).with_name("shellcheck"))
    if not Path(shellcheck).exists():
        pytest.skip("shellcheck is not installed (it comes with the test extras: pip install -e .[test])")
    result = subprocess.run([shellcheck, "-x", script], cwd=REPO, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout
