"""What the packaging checks share: repository paths and setup.py's version constants (read with ast).

The versions the project agrees on are ``TORCH_VERSION`` and ``MINKOWSKIENGINE_VERSION`` in setup.py,
read without importing it. Every checker in this folder returns a list of problems, so each is run
twice: on the real files (no problems) and on deliberately broken copies (the problem is found).
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
DOCKERFILE = REPO / "Dockerfile"
DOCKERIGNORE = REPO / ".dockerignore"
ENVIRONMENT = REPO / "environment.yml"
SBATCH = REPO / "tools" / "slurm_pretrain.sbatch"
SETUP_ENV = REPO / "tools" / "setup_env.sh"
SETUP_PY = REPO / "setup.py"
CLUSTER_DOC = REPO / "docs" / "cluster.md"
PATCH_DIR = REPO / "patches" / "minkowskiengine"


def setup_constants(text: str) -> dict[str, str]:
    """Module-level string constants of setup.py, plus ``python_requires`` of its ``setup()`` call."""
    tree = ast.parse(text)
    out: dict[str, str] = {}
    for node in tree.body:
        if (
            isinstance(node, ast.Assign)
            and len(node.targets) == 1
            and isinstance(node.targets[0], ast.Name)
            and isinstance(node.value, ast.Constant)
            and isinstance(node.value.value, str)
        ):
            out[node.targets[0].id] = node.value.value
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "setup":
            for kw in node.keywords:
                if kw.arg == "python_requires" and isinstance(kw.value, ast.Constant):
                    out["python_requires"] = kw.value.value
    for key in ("TORCH_VERSION", "MINKOWSKIENGINE_VERSION", "python_requires"):
        if key not in out:
            raise ValueError(f"setup.py defines no string constant {key}; tests/packaging/common.py reads it")
    return out


def min_python(python_requires: str) -> tuple[int, int]:
    """Lower bound of a ``>=X.Y`` requirement."""
    m = re.search(r">=\s*(\d+)\.(\d+)", python_requires)
    if not m:
        raise ValueError(f"cannot read a lower bound from python_requires={python_requires!r}")
    return int(m.group(1)), int(m.group(2))
