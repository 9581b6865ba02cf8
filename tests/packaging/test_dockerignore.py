""".dockerignore keeps data, outputs and host build products out of the image, and nothing the image needs."""

from __future__ import annotations

import shutil
import subprocess

import pytest

from tests.packaging.common import DOCKERIGNORE, REPO
from tests.packaging.dockerignore import DockerIgnore, dockerignore_problems


def test_dockerignore_semantics_on_hand_made_patterns():
    # Docker's rules (docs.docker.com, .dockerignore): patterns are relative to the context root.
    root_only = DockerIgnore("*.so\n")
    assert root_only.excluded("x.so") and not root_only.excluded("src/x.so")
    anywhere = DockerIgnore("**/*.so\n")
    assert anywhere.excluded("x.so") and anywhere.excluded("src/pixvox/x.so")
    assert not anywhere.excluded("src/pixvox/x.sox")
    folder = DockerIgnore("/data/\n!data/README.md\n")
    assert folder.excluded("data/a/b.npz") and not folder.excluded("data/README.md")
    assert not folder.excluded("data_prep/a.py") and not folder.excluded("configs/data/x.yaml")
    last_wins = DockerIgnore("!keep.txt\n*.txt\n")
    assert last_wins.excluded("keep.txt")
    chars = DockerIgnore("file[0-9].txt\nlog?.txt\n")
    assert chars.excluded("file3.txt") and not chars.excluded("filex.txt")
    assert chars.excluded("log1.txt") and not chars.excluded("log/.txt")


def test_dockerignore_keeps_data_and_outputs_out():
    assert dockerignore_problems(DOCKERIGNORE.read_text()) == []


@pytest.mark.parametrize("line", ["data", "outputs", "**/*.so"])
def test_dockerignore_checker_finds_a_missing_pattern(line):
    text = DOCKERIGNORE.read_text()
    assert f"\n{line}\n" in text
    assert dockerignore_problems(text.replace(f"\n{line}\n", "\n")) != []


def test_dockerignore_excludes_nothing_the_repository_tracks():
    if shutil.which("git") is None or not (REPO / ".git").exists():
        pytest.skip("not a git checkout (e.g. inside the image); cannot list the repository's files")
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    assert "setup.py" in listed
    rules = DockerIgnore(DOCKERIGNORE.read_text())
    # Only top-level dotfiles such as .gitignore may be left out on purpose.
    dropped = [f for f in listed if rules.excluded(f) and not (f.startswith(".") and "/" not in f)]
    assert dropped == []
