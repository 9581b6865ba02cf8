"""Docker's .dockerignore rules, for the packaging checks (no Docker engine runs in the tests)."""

from __future__ import annotations

import posixpath
import re


def _norm(path: str) -> str:
    path = posixpath.normpath(path.strip())
    return "" if path == "." else path


def _glob_regex(pattern: str) -> str:
    """A .dockerignore pattern as a regex: ``*`` and ``?`` stay within one folder, ``**`` crosses folders."""
    out, i = [], 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out.append("(?:.*/)?")
            i += 3
        elif pattern.startswith("**", i):
            out.append(".*")
            i += 2
        elif pattern[i] == "*":
            out.append("[^/]*")
            i += 1
        elif pattern[i] == "?":
            out.append("[^/]")
            i += 1
        elif pattern[i] == "[":
            end = pattern.index("]", i)
            body = pattern[i + 1 : end]
            out.append("[" + ("^" + body[1:] if body.startswith("!") else body) + "]")
            i = end + 1
        else:
            out.append(re.escape(pattern[i]))
            i += 1
    return "".join(out)


class DockerIgnore:
    """Docker's .dockerignore rules: patterns from the context root, ``!`` re-includes, the last match
    wins, and a path is excluded when it or one of its parent folders matches."""

    def __init__(self, text: str):
        self.rules: list[tuple[re.Pattern, bool]] = []
        for raw in text.splitlines():
            line = raw.strip()
            if not line or line.startswith("#"):
                continue
            include = line.startswith("!")
            pattern = _norm(line.lstrip("!").strip().lstrip("/"))
            if pattern:
                self.rules.append((re.compile(_glob_regex(pattern)), include))

    def excluded(self, path: str) -> bool:
        parts = _norm(path).split("/")
        candidates = ["/".join(parts[: i + 1]) for i in range(len(parts))]
        excluded = False
        for regex, include in self.rules:
            if any(regex.fullmatch(c) for c in candidates):
                excluded = not include
        return excluded


# Paths that must never reach the image, and paths that must (they look like data but are code).
MUST_EXCLUDE = (
    "data/scannet/scene0000_00.npz",
    "outputs/ppkt/checkpoints/step_000100.pt",
    "wandb/run-20260101_000000-abc/files/config.yaml",
    ".venv/bin/python",
    ".git/HEAD",
    "build/.pixvox-installed-py311-cpu",
    "src/pixvox/_ext.cpython-311-x86_64-linux-gnu.so",
    "src/pixvox/ops/__pycache__/voxel_hash.cpython-312.pyc",
    "src/pixvox.egg-info/PKG-INFO",
)
MUST_INCLUDE = (
    "data_prep/make_fusions.py",
    "configs/data/scannet.yaml",
    "src/pixvox/datasets/data.py",
    "tests/data/tiny_scene.npz",
    "cuda_ext/cpu/voxel_hash.cpp",
    "tools/pretrain.sh",
    "tools/launch.sh",
    "tools/finetune_seg.sh",
)


def dockerignore_problems(text: str) -> list[str]:
    rules = DockerIgnore(text)
    problems = [f"{p} is not excluded from the image" for p in MUST_EXCLUDE if not rules.excluded(p)]
    problems += [f"{p} is excluded from the image" for p in MUST_INCLUDE if rules.excluded(p)]
    return problems
