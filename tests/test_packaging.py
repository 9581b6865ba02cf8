"""Packaging consistency: Dockerfile, .dockerignore, environment.yml, the SLURM script and setup.py agree.

The versions the project agrees on are ``TORCH_VERSION`` and ``MINKOWSKIENGINE_VERSION`` in setup.py
(read with ``ast``, never imported). Every checker below returns a list of problems, so each is run
twice: on the real files (no problems) and on deliberately broken temporary copies (the problem is
found). The SLURM script's signal and requeue logic runs for real under bash, with stand-ins for
``srun``, ``squeue``, ``scontrol`` and ``tools/pretrain.sh``.
"""

from __future__ import annotations

import ast
import os
import posixpath
import re
import shlex
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
DOCKERFILE = REPO / "Dockerfile"
DOCKERIGNORE = REPO / ".dockerignore"
ENVIRONMENT = REPO / "environment.yml"
SBATCH = REPO / "tools" / "slurm_pretrain.sbatch"
SETUP_ENV = REPO / "tools" / "setup_env.sh"
SETUP_PY = REPO / "setup.py"
CLUSTER_DOC = REPO / "docs" / "cluster.md"

# Oldest GPU architecture each CUDA major release can compile for (CUDA 12 dropped Kepler, 13 dropped
# Maxwell, Pascal and Volta).
MIN_ARCH_FOR_CUDA = {11: (3, 5), 12: (5, 0), 13: (7, 5)}
# Python of the Ubuntu releases an nvidia/cuda image may be based on.
UBUNTU_PYTHON = {"20.04": (3, 8), "22.04": (3, 10), "24.04": (3, 12)}
# What tools/setup_env.sh needs in the image before it runs.
SETUP_INPUTS = ("tools/setup_env.sh", "setup.py", "pyproject.toml", "src", "cuda_ext")


# ------------------------------------------------------------------------------------------ setup.py
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
            raise ValueError(f"setup.py defines no string constant {key}; tests/test_packaging.py reads it")
    return out


def min_python(python_requires: str) -> tuple[int, int]:
    """Lower bound of a ``>=X.Y`` requirement."""
    m = re.search(r">=\s*(\d+)\.(\d+)", python_requires)
    if not m:
        raise ValueError(f"cannot read a lower bound from python_requires={python_requires!r}")
    return int(m.group(1)), int(m.group(2))


@pytest.fixture(scope="module")
def constants() -> dict[str, str]:
    return setup_constants(SETUP_PY.read_text())


# ------------------------------------------------------------------------------------ setup_env.sh
def setup_env_problems(text: str, const: dict[str, str]) -> list[str]:
    """The script's default torch requirement and MinkowskiEngine version against setup.py."""
    problems = []
    spec = re.search(r'^TORCH_SPEC="\$\{PIXVOX_TORCH_SPEC:-([^}"]*)\}"', text, re.M)
    if not spec:
        problems.append('setup_env.sh: no TORCH_SPEC="${PIXVOX_TORCH_SPEC:-...}" default found')
    elif spec.group(1) != f"torch=={const['TORCH_VERSION']}":
        problems.append(
            f"setup_env.sh: default torch spec {spec.group(1)!r} != "
            f"torch=={const['TORCH_VERSION']} of setup.py"
        )
    me = re.search(r'^ME_VERSION="([^"]*)"', text, re.M)
    if not me:
        problems.append('setup_env.sh: no ME_VERSION="..." found')
    elif me.group(1) != const["MINKOWSKIENGINE_VERSION"]:
        problems.append(
            f"setup_env.sh: ME_VERSION {me.group(1)!r} != MINKOWSKIENGINE_VERSION "
            f"{const['MINKOWSKIENGINE_VERSION']!r} of setup.py"
        )
    return problems


# -------------------------------------------------------------------------------------- Dockerfile
@dataclass
class Instruction:
    keyword: str  # upper case: FROM, ARG, ENV, RUN, ...
    args: str  # the arguments, continuation lines joined
    line: int  # 1-based line where the instruction starts


def parse_dockerfile(text: str) -> list[Instruction]:
    """Split a Dockerfile into instructions (comments dropped, ``\\`` continuations joined)."""
    instructions: list[Instruction] = []
    parts: list[str] = []
    start = 0
    for lineno, raw in enumerate(text.splitlines(), 1):
        stripped = raw.strip()
        if stripped.startswith("#") or (not stripped and not parts):
            continue  # comments (also inside continuations) and blank lines between instructions
        if not stripped:
            continue
        if not parts:
            start = lineno
        if stripped.endswith("\\"):
            parts.append(stripped[:-1].strip())
            continue
        parts.append(stripped)
        joined = " ".join(p for p in parts if p)
        keyword, _, args = joined.partition(" ")
        if "<<" in args and keyword.upper() in ("RUN", "COPY"):
            raise ValueError(f"Dockerfile line {start}: heredocs are not supported by this checker")
        instructions.append(Instruction(keyword.upper(), args.strip(), start))
        parts = []
    if parts:
        raise ValueError(f"Dockerfile line {start}: line continuation runs past the end of the file")
    return instructions


_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::([-+])([^}]*))?\}|\$([A-Za-z_][A-Za-z0-9_]*)")


def expand(value: str, env: dict[str, str]) -> str:
    """Docker's ``$VAR``, ``${VAR}``, ``${VAR:-default}``, ``${VAR:+alt}``; unknown names stay as written."""

    def sub(m: re.Match) -> str:
        name = m.group(1) or m.group(4)
        if m.group(2) == "-":
            return env.get(name) or m.group(3)
        if m.group(2) == "+":
            return m.group(3) if env.get(name) else ""
        return env.get(name, m.group(0))

    return _VAR.sub(sub, value)


def _assignments(args: str, env: dict[str, str], keyword: str) -> dict[str, str]:
    """``ARG``/``ENV`` arguments as name → expanded value (``ARG NAME`` without default → empty marker)."""
    tokens = shlex.split(args)
    if keyword == "ENV" and tokens and "=" not in tokens[0]:  # legacy `ENV key value with spaces`
        return {tokens[0]: expand(" ".join(tokens[1:]), env)}
    out = {}
    for token in tokens:
        name, eq, value = token.partition("=")
        out[name] = expand(value, env) if eq else None  # type: ignore[assignment]
    return out


@dataclass
class DockerfileModel:
    base_image: str
    args: dict[str, str]  # ARGs of the (last) stage, with defaults, expanded
    env: dict[str, str]  # ENV of the (last) stage, expanded
    instructions: list[Instruction]  # of the (last) stage


def evaluate_dockerfile(text: str) -> DockerfileModel:
    """Resolve the ARG/ENV values and the base image of a Dockerfile's last stage."""
    global_args: dict[str, str] = {}
    args: dict[str, str] = {}
    env: dict[str, str] = {}
    base = ""
    stage: list[Instruction] = []
    for ins in parse_dockerfile(text):
        if ins.keyword == "FROM":
            words = [w for w in ins.args.split() if not w.startswith("--")]
            base = expand(words[0], global_args)
            args, env, stage = {}, {}, []
            continue
        stage.append(ins)
        scope = {**global_args, **args, **env} if base else global_args
        if ins.keyword == "ARG":
            for name, value in _assignments(ins.args, scope, "ARG").items():
                value = global_args.get(name, "") if value is None else value
                (args if base else global_args)[name] = value
        elif ins.keyword == "ENV" and base:
            env.update(_assignments(ins.args, scope, "ENV"))
    if not base:
        raise ValueError("Dockerfile has no FROM instruction")
    return DockerfileModel(base, args, env, stage)


def _norm(path: str) -> str:
    path = posixpath.normpath(path.strip())
    return "" if path == "." else path


def _runs_setup_env(command: str) -> bool:
    return re.search(r"(?:^|[\s;&|(])(?:(?:bash|sh)\s+)?(?:\./)?tools/setup_env\.sh\b", command) is not None


_DIRECT_INSTALL = re.compile(
    r"\b(?:pip3?|python3?\s+-m\s+pip|uv\s+pip|conda|mamba|micromamba)\s+(?:install|wheel)\b"
    r"[^;&|]*?(?<![\w-])(?:py)?(?:torch|minkowskiengine)(?![\w-])",
    re.I,
)


def dockerfile_problems(text: str, const: dict[str, str]) -> list[str]:
    """What keeps the image from being the setup script's install of setup.py's versions."""
    model = evaluate_dockerfile(text)
    problems = []

    m = re.fullmatch(
        r"(?:[\w.-]+/)?nvidia/cuda:(\d+)\.(\d+)(?:\.\d+)?-(?:cudnn\d*-)?(\w+)-ubuntu([\d.]+)",
        model.base_image,
    )
    cuda_major = None
    if not m:
        problems.append(
            f"base image {model.base_image!r} is not an nvidia/cuda:<version>-devel-ubuntu<release> image"
        )
    else:
        cuda_major = int(m.group(1))
        if m.group(3) != "devel":
            problems.append(f"base image {model.base_image!r} is not a -devel image: nvcc is needed to build")
        py = UBUNTU_PYTHON.get(m.group(4))
        if py is None:
            problems.append(f"Ubuntu {m.group(4)} of the base image is not in UBUNTU_PYTHON of this test")
        elif py < min_python(const["python_requires"]):
            problems.append(
                f"Ubuntu {m.group(4)}'s Python {py} is older than python_requires {const['python_requires']}"
            )

    torch_version = model.args.get("TORCH_VERSION")
    if torch_version != const["TORCH_VERSION"]:
        problems.append(
            f"ARG TORCH_VERSION={torch_version!r} != TORCH_VERSION {const['TORCH_VERSION']!r} of setup.py"
        )
    spec = model.env.get("PIXVOX_TORCH_SPEC")
    if spec != f"torch=={const['TORCH_VERSION']}":
        problems.append(f"ENV PIXVOX_TORCH_SPEC={spec!r}, expected torch=={const['TORCH_VERSION']}")
    if model.env.get("OPENBLAS_NUM_THREADS") != "1":
        problems.append("ENV OPENBLAS_NUM_THREADS=1 is missing")
    if model.env.get("PIXVOX_SKIP_SETUP") != "1":
        problems.append(
            "ENV PIXVOX_SKIP_SETUP=1 is missing: tools/pretrain.sh would redo the setup at each start"
        )

    arch_list = model.args.get("TORCH_CUDA_ARCH_LIST", "")
    if not arch_list:
        problems.append("no build argument TORCH_CUDA_ARCH_LIST with a default")
    if model.env.get("TORCH_CUDA_ARCH_LIST") != arch_list:
        problems.append("ENV TORCH_CUDA_ARCH_LIST does not carry the build argument TORCH_CUDA_ARCH_LIST")
    for arch in re.split(r"[;\s]+", arch_list.strip()) if arch_list.strip() else []:
        am = re.fullmatch(r"(\d+)\.(\d+)[af]?(\+PTX)?", arch)
        if not am:
            problems.append(f"TORCH_CUDA_ARCH_LIST entry {arch!r} is not like 8.0, 9.0a or 9.0+PTX")
        elif (
            cuda_major in MIN_ARCH_FOR_CUDA
            and (int(am.group(1)), int(am.group(2))) < MIN_ARCH_FOR_CUDA[cuda_major]
        ):
            problems.append(
                f"TORCH_CUDA_ARCH_LIST entry {arch} is older than CUDA {cuda_major} can compile for"
            )

    copied: list[str] = []
    setup_runs = 0
    for ins in model.instructions:
        if ins.keyword in ("COPY", "ADD"):
            words = [w for w in shlex.split(ins.args) if not w.startswith("--")]
            if len(words) >= 2 and not any(w.startswith("--from") for w in shlex.split(ins.args)):
                copied += [_norm(w) for w in words[:-1]]
        elif ins.keyword == "RUN":
            if _DIRECT_INSTALL.search(ins.args):
                problems.append(
                    f"line {ins.line}: RUN installs torch or MinkowskiEngine itself; "
                    "leave that to tools/setup_env.sh"
                )
            if _runs_setup_env(ins.args):
                setup_runs += 1
                for need in SETUP_INPUTS:
                    if not any(src == "" or need == src or need.startswith(src + "/") for src in copied):
                        problems.append(
                            f"line {ins.line}: tools/setup_env.sh runs before {need} is copied in"
                        )
    if setup_runs == 0:
        problems.append("no RUN instruction runs tools/setup_env.sh")
    launch = " ".join(i.args for i in model.instructions if i.keyword in ("ENTRYPOINT", "CMD"))
    if "tools/pretrain.sh" not in launch:
        problems.append("neither ENTRYPOINT nor CMD runs tools/pretrain.sh")
    return problems


def dockerfile_copy_sources(text: str) -> list[str]:
    """Paths in the build context that COPY/ADD instructions read (``.`` excluded)."""
    sources = []
    for ins in evaluate_dockerfile(text).instructions:
        if ins.keyword in ("COPY", "ADD"):
            words = shlex.split(ins.args)
            if any(w.startswith("--from") for w in words):
                continue
            words = [w for w in words if not w.startswith("--")]
            sources += [_norm(w) for w in words[:-1] if _norm(w)]
    return sources


# ---------------------------------------------------------------------------------- .dockerignore
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


# -------------------------------------------------------------------------------- environment.yml
_CXX_COMPILERS = {"cxx-compiler", "compilers", "gxx", "gxx_linux-64"}
_NOT_IN_CONDA = {"torch", "pytorch", "minkowskiengine"}


def environment_problems(text: str, const: dict[str, str]) -> list[str]:
    """environment.yml: Python, pip, compilers, OpenBLAS from conda-forge; torch and ME left to the script."""
    env = yaml.safe_load(text)
    problems = []
    if not isinstance(env, dict) or not isinstance(env.get("dependencies"), list):
        return ["environment.yml is not a mapping with a dependencies list"]
    name = env.get("name")
    if f"conda activate {name}" not in text:
        problems.append(f"environment name {name!r} differs from the `conda activate` in its instructions")
    for command in ("conda env create -f environment.yml", "PIXVOX_NO_VENV=1 bash tools/setup_env.sh"):
        if command not in text:
            problems.append(f"environment.yml does not document `{command}`")
    if "conda-forge" not in (env.get("channels") or []):
        problems.append("conda-forge is not among the channels")
    if str((env.get("variables") or {}).get("PIXVOX_NO_VENV")) != "1":
        problems.append("variables: PIXVOX_NO_VENV is not 1, so tools/pretrain.sh would look for a .venv")

    names: dict[str, str] = {}
    pip_deps: list[str] = []
    for dep in env["dependencies"]:
        if isinstance(dep, dict):
            pip_deps += [str(d) for d in dep.get("pip", [])]
            continue
        m = re.match(r"\s*([A-Za-z0-9_.\-]+)\s*(.*)", str(dep))
        if m:
            names[m.group(1).lower()] = m.group(2).strip()
    python = re.fullmatch(r"=+\s*(\d+)\.(\d+)(?:\.\*)?", names.get("python", ""))
    if not python:
        problems.append(
            f"python is not pinned to one minor version (python=X.Y), got {names.get('python')!r}"
        )
    elif (int(python.group(1)), int(python.group(2))) < min_python(const["python_requires"]):
        problems.append(
            f"python {python.group(1)}.{python.group(2)} is older than "
            f"python_requires {const['python_requires']}"
        )
    for needed in ("pip", "openblas"):
        if needed not in names:
            problems.append(f"{needed} is not in the dependencies")
    if not _CXX_COMPILERS & set(names):
        problems.append(f"no C++ compiler ({', '.join(sorted(_CXX_COMPILERS))}) in the dependencies")
    pip_names = {re.split(r"[\s=<>!~\[]", d, maxsplit=1)[0].lower() for d in pip_deps}
    pinned_here = _NOT_IN_CONDA & (set(names) | pip_names)
    if pinned_here:
        problems.append(f"{sorted(pinned_here)} listed in environment.yml; tools/setup_env.sh installs them")
    return problems


# ---------------------------------------------------------------------------------- sbatch script
def sbatch_problems(text: str) -> list[str]:
    """The SLURM script: directives sbatch will read, requeue on a warning signal, tools/pretrain.sh."""
    problems = []
    lines = text.splitlines()
    if not lines or not re.match(r"#!\s*(/usr/bin/env\s+bash|/bin/bash)", lines[0]):
        problems.append("first line is not a bash shebang")
    directives, code, first_command = [], [], None
    for lineno, line in enumerate(lines[1:], 2):
        stripped = line.strip()
        if stripped.startswith("#SBATCH"):
            if first_command is not None:
                problems.append(
                    f"line {lineno}: #SBATCH after the first command (line {first_command}) is ignored"
                )
            directives.append(stripped[len("#SBATCH") :].strip())
        elif stripped and not stripped.startswith("#"):
            first_command = first_command or lineno
            code.append(stripped)
    if "--requeue" not in directives:
        problems.append("no #SBATCH --requeue")
    lead = None
    for d in directives:
        m = re.fullmatch(r"--signal=B:(?:SIG)?TERM@(\d+)", d)
        if m:
            lead = int(m.group(1))
    if lead is None:
        problems.append("no #SBATCH --signal=B:TERM@<seconds>")
    elif lead < 60:
        problems.append(f"--signal lead time {lead} s is below SLURM's 60 s signal resolution")
    body = "\n".join(code)
    timeout = re.search(r"TORCH_ELASTIC_SHUTDOWN_TIMEOUT:-(\d+)", body)
    if not timeout:
        problems.append("TORCH_ELASTIC_SHUTDOWN_TIMEOUT gets no default")
    elif lead is not None and int(timeout.group(1)) >= lead:
        problems.append(
            f"TORCH_ELASTIC_SHUTDOWN_TIMEOUT {timeout.group(1)} s is not below the {lead} s signal lead"
        )
    # Invocations, not mentions in messages: `bash tools/pretrain.sh`, a line starting with srun, ...
    for pattern, why in (
        (r"\b(?:bash|sh)\s+(?:\./)?tools/pretrain\.sh\b", "does not run tools/pretrain.sh"),
        (r"^srun\s", "does not start the nodes with srun"),
        (r"(?<![\w-])--resume\b", "does not pass --resume"),
        (r"^scontrol\s+requeue\s", "never requeues the job"),
    ):
        if not re.search(pattern, body, re.M):
            problems.append(f"the script {why}")
    return problems


# ------------------------------------------------------------------------------- version mentions
def version_mention_problems(text: str, const: dict[str, str], what: str) -> list[str]:
    """Every `torch X.Y.Z` / `torch==X.Y.Z` / `MinkowskiEngine X.Y.Z` in a file names setup.py's version."""
    problems = []
    for pattern, key in (
        (r"(?<![\w-])torch(?:\s*==\s*|\s+)v?(\d+\.\d+\.\d+)", "TORCH_VERSION"),
        (r"(?i)(?<![\w-])minkowskiengine(?:\s*==\s*|\s+)v?(\d+\.\d+\.\d+)", "MINKOWSKIENGINE_VERSION"),
    ):
        for m in re.finditer(pattern, text):
            if m.group(1) != const[key]:
                line = text.count("\n", 0, m.start()) + 1
                problems.append(
                    f"{what}:{line}: {m.group(0)!r} differs from {key} {const[key]!r} of setup.py"
                )
    return problems


# ====================================================================================== the tests
def test_setup_py_constants_are_read_without_importing(constants, tmp_path):
    assert re.fullmatch(r"\d+\.\d+\.\d+", constants["TORCH_VERSION"])
    assert re.fullmatch(r"\d+\.\d+\.\d+", constants["MINKOWSKIENGINE_VERSION"])
    # A copy that would fail on import (no setuptools call can run) still parses, and a changed
    # constant is read as changed.
    text = SETUP_PY.read_text().replace(
        f'TORCH_VERSION = "{constants["TORCH_VERSION"]}"', 'TORCH_VERSION = "9.9.9"'
    )
    assert setup_constants("raise SystemExit('imported')\n" + text)["TORCH_VERSION"] == "9.9.9"
    with pytest.raises(ValueError, match="MINKOWSKIENGINE_VERSION"):
        setup_constants(text.replace("MINKOWSKIENGINE_VERSION =", "ME_VERSION_RENAMED ="))


def test_setup_env_defaults_match_setup_py(constants):
    assert setup_env_problems(SETUP_ENV.read_text(), constants) == []


@pytest.mark.parametrize(
    "old, new, expected",
    [
        ("PIXVOX_TORCH_SPEC:-torch==", "PIXVOX_TORCH_SPEC:-torch==1.", "default torch spec"),
        ('ME_VERSION="', 'ME_VERSION="0.', "ME_VERSION"),
    ],
)
def test_setup_env_checker_finds_a_mismatch(constants, old, new, expected):
    text = SETUP_ENV.read_text()
    assert old in text
    problems = setup_env_problems(text.replace(old, new, 1), constants)
    assert any(expected in p for p in problems), problems


def test_dockerfile_installs_setup_py_versions_through_the_setup_script(constants):
    assert dockerfile_problems(DOCKERFILE.read_text(), constants) == []
    model = evaluate_dockerfile(DOCKERFILE.read_text())
    # The ENV values are resolved from the build arguments, not read as literal "${...}" text.
    assert model.env["PIXVOX_TORCH_SPEC"] == f"torch=={constants['TORCH_VERSION']}"
    assert "$" not in model.env["TORCH_CUDA_ARCH_LIST"]


@pytest.mark.parametrize(
    "old, new, expected",
    [
        ("ARG TORCH_VERSION=2.13.0", "ARG TORCH_VERSION=2.12.0", "ARG TORCH_VERSION"),
        ("PIXVOX_TORCH_SPEC=torch==${TORCH_VERSION}", "PIXVOX_TORCH_SPEC=torch==2.12.0", "PIXVOX_TORCH_SPEC"),
        ('TORCH_CUDA_ARCH_LIST="7.5;', 'TORCH_CUDA_ARCH_LIST="6.1;7.5;', "6.1 is older than CUDA 13"),
        ('TORCH_CUDA_ARCH_LIST="7.5;', 'TORCH_CUDA_ARCH_LIST="sm_75;', "'sm_75' is not like"),
        ("-devel-ubuntu", "-runtime-ubuntu", "not a -devel image"),
        ("ARG UBUNTU_VERSION=24.04", "ARG UBUNTU_VERSION=20.04", "older than python_requires"),
        ("OPENBLAS_NUM_THREADS=1", "OPENBLAS_NUM_THREADS=4", "OPENBLAS_NUM_THREADS"),
        ("    PIXVOX_SKIP_SETUP=1 \\\n", "", "PIXVOX_SKIP_SETUP"),
        ("bash tools/setup_env.sh", "pip install torch==2.13.0 minkowskiengine==0.5.4", "installs torch"),
        ("bash tools/setup_env.sh", "true", "no RUN instruction runs tools/setup_env.sh"),
        ("COPY src/ src/\n", "", "before src is copied"),
        ("tools/pretrain.sh", "tools/train.sh", "tools/pretrain.sh"),
    ],
)
def test_dockerfile_checker_finds_a_mismatch(constants, old, new, expected):
    text = DOCKERFILE.read_text()
    assert old in text, f"the Dockerfile no longer contains {old!r}; update this test case"
    problems = dockerfile_problems(text.replace(old, new), constants)
    assert any(expected in p for p in problems), problems


def test_dockerfile_parser_follows_docker_rules():
    text = (
        "ARG BASE=12.8.1\n"
        "FROM nvidia/cuda:${BASE}-devel-ubuntu22.04 AS build\n"
        "ARG BASE\n"
        "ARG LIST='8.0;9.0'\n"
        "# a comment\n"
        "ENV A=1 \\\n"
        "    # comments inside a continuation are dropped\n"
        '    B="two words" C=${LIST} D=${MISSING:-fallback} E=${A:+set}\n'
        "ENV F before-${A}\n"
        "RUN echo $LIST\n"
    )
    model = evaluate_dockerfile(text)
    assert model.base_image == "nvidia/cuda:12.8.1-devel-ubuntu22.04"
    assert model.args == {"BASE": "12.8.1", "LIST": "8.0;9.0"}
    # All substitutions of one ENV see the values from before it (A is not yet set for E).
    assert model.env == {
        "A": "1",
        "B": "two words",
        "C": "8.0;9.0",
        "D": "fallback",
        "E": "",
        "F": "before-1",
    }
    assert [i.keyword for i in model.instructions] == ["ARG", "ARG", "ENV", "ENV", "RUN"]
    assert model.instructions[2].line == 6
    with pytest.raises(ValueError, match="continuation"):
        parse_dockerfile("FROM x\nRUN a \\\n")


def test_dockerfile_copy_sources_exist_and_reach_the_build_context():
    rules = DockerIgnore(DOCKERIGNORE.read_text())
    sources = dockerfile_copy_sources(DOCKERFILE.read_text())
    assert set(SETUP_INPUTS) <= set(sources)
    for src in sources:
        assert (REPO / src).exists(), f"the Dockerfile copies {src}, which is not in the repository"
        assert not rules.excluded(src), f"the Dockerfile copies {src}, which .dockerignore excludes"


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


def test_environment_yml_leaves_torch_and_minkowskiengine_to_the_script(constants):
    assert environment_problems(ENVIRONMENT.read_text(), constants) == []


@pytest.mark.parametrize(
    "old, new, expected",
    [
        ("python=3.11", "python=3.8", "older than python_requires"),
        ("python=3.11", "python>=3.9", "not pinned"),
        ("  - openblas\n", "", "openblas is not in the dependencies"),
        ("  - gxx_linux-64=13\n", "", "no C++ compiler"),
        ("  - ninja\n", "  - ninja\n  - pytorch=2.13\n", "'pytorch'"),
        ("  - ninja\n", "  - ninja\n  - pip:\n    - MinkowskiEngine==0.5.4\n", "'minkowskiengine'"),
        ("name: pixvox", "name: pixvox-dev", "differs from the `conda activate`"),
        ("PIXVOX_NO_VENV=1 bash tools/setup_env.sh", "bash tools/setup_env.sh", "PIXVOX_NO_VENV=1"),
        ("  - conda-forge\n", "  - defaults\n", "conda-forge"),
        ('PIXVOX_NO_VENV: "1"', 'PIXVOX_NO_VENV: "0"', "variables: PIXVOX_NO_VENV"),
    ],
)
def test_environment_checker_finds_a_mismatch(constants, old, new, expected):
    text = ENVIRONMENT.read_text()
    assert old in text, f"environment.yml no longer contains {old!r}; update this test case"
    problems = environment_problems(text.replace(old, new), constants)
    assert any(expected in p for p in problems), problems


def test_sbatch_script_requeues_on_the_warning_signal_and_runs_pretrain():
    assert sbatch_problems(SBATCH.read_text()) == []


@pytest.mark.parametrize(
    "old, new, expected",
    [
        ("#SBATCH --requeue\n", "", "no #SBATCH --requeue"),
        ("--signal=B:TERM@120", "--signal=B:TERM@30", "below SLURM's 60 s"),
        ("--signal=B:TERM@120", "--signal=TERM@120", "no #SBATCH --signal=B:TERM"),
        ("TORCH_ELASTIC_SHUTDOWN_TIMEOUT:-90", "TORCH_ELASTIC_SHUTDOWN_TIMEOUT:-150", "not below the 120 s"),
        (
            "#SBATCH --job-name=pixvox-pretrain\n",
            "set -u\n#SBATCH --job-name=pixvox-pretrain\n",
            "is ignored",
        ),
        ("bash tools/pretrain.sh)", "bash tools/train.sh)", "does not run tools/pretrain.sh"),
        ('scontrol requeue "$SLURM_JOB_ID"', "true", "never requeues"),
    ],
)
def test_sbatch_checker_finds_a_mismatch(old, new, expected):
    text = SBATCH.read_text()
    assert old in text, f"the sbatch script no longer contains {old!r}; update this test case"
    problems = sbatch_problems(text.replace(old, new))
    assert any(expected in p for p in problems), problems


@pytest.mark.parametrize("path", [DOCKERFILE, ENVIRONMENT, CLUSTER_DOC, SBATCH], ids=lambda p: p.name)
def test_versions_named_in_packaging_files_match_setup_py(constants, path):
    assert version_mention_problems(path.read_text(), constants, path.name) == []


def test_version_mention_checker_finds_a_stale_version(constants):
    me = constants["MINKOWSKIENGINE_VERSION"]
    text = (
        f"Install torch 1.0.0 and MinkowskiEngine {me}, or minkowskiengine==0.0.1; torchvision 0.1.0 is fine."
    )
    problems = version_mention_problems(text, constants, "x")
    assert len(problems) == 2 and "'torch 1.0.0'" in problems[0] and "0.0.1" in problems[1], problems


def test_cluster_doc_names_only_existing_repository_files():
    text = CLUSTER_DOC.read_text()
    named = set(re.findall(r"(?<![\w/.-])((?:tools|docs|tests|configs|data_prep|src)/[\w./-]*\w)", text))
    named |= {n for n in ("Dockerfile", ".dockerignore", "environment.yml", "setup.py") if n in text}
    assert {"tools/slurm_pretrain.sbatch", "tools/setup_env.sh", "tools/pretrain.sh"} <= named
    missing = sorted(n for n in named if not (REPO / n).exists())
    assert missing == [], f"docs/cluster.md names files that do not exist: {missing}"


# ---------------------------------------------------------------------------- shell script checks
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


# ------------------------------------------------------------ the sbatch script, run under bash
FAKE_PRETRAIN = """#!/usr/bin/env bash
# Stand-in for tools/pretrain.sh: records its arguments and environment, then "trains" until SIGTERM,
# when it "saves a checkpoint" and exits 0, as the real one does.
printf '%s\\n' "$@" > "$FAKE_LOG/args"
env | grep -E '^(MASTER_ADDR|MASTER_PORT|TORCH_ELASTIC_SHUTDOWN_TIMEOUT)=' > "$FAKE_LOG/env"
env | grep -E '^(OPENBLAS_NUM_THREADS|PIXVOX_SKIP_SETUP)=' >> "$FAKE_LOG/env"
trap 'echo saved > "$FAKE_LOG/checkpoint"; exit 0' TERM
touch "$FAKE_LOG/started"
if [[ -n "${FAKE_EXIT:-}" ]]; then exit "$FAKE_EXIT"; fi
for _ in $(seq 200); do sleep 0.05; done  # 10 s, then fail with 99
exit 99
"""
FAKE_SRUN = """#!/usr/bin/env bash
# Stand-in for srun: records its options and runs the command once, as a node's single task.
printf '%s\\n' "$@" > "$FAKE_LOG/srun_args"
while [[ $# -gt 0 && "$1" == --* ]]; do shift; done
exec "$@"
"""
FAKE_SCONTROL = """#!/usr/bin/env bash
case "$1" in
    show) printf 'node-a\\nnode-b\\n' ;;
    requeue) echo "$2" >> "$FAKE_LOG/requeued" ;;
    *) exit 1 ;;
esac
"""
FAKE_SQUEUE = """#!/usr/bin/env bash
echo "$FAKE_TIME_LEFT"
"""
FAKE_SETUP_ENV = """#!/usr/bin/env bash
# Stand-in for tools/setup_env.sh: counts its runs and fails when asked to.
echo run >> "$FAKE_LOG/setup_runs"
exit "${FAKE_SETUP_EXIT:-0}"
"""


@pytest.fixture
def slurm_sandbox(tmp_path):
    """A submission folder with a stand-in tools/pretrain.sh and stand-ins for SLURM's commands."""
    if shutil.which("bash") is None:
        pytest.skip("bash is not available")
    repo, bin_dir, log = tmp_path / "repo", tmp_path / "bin", tmp_path / "log"
    for d in (repo / "tools", bin_dir, log):
        d.mkdir(parents=True)
    for path, body in (
        (repo / "tools" / "pretrain.sh", FAKE_PRETRAIN),
        (repo / "tools" / "setup_env.sh", FAKE_SETUP_ENV),
        (bin_dir / "srun", FAKE_SRUN),
        (bin_dir / "scontrol", FAKE_SCONTROL),
        (bin_dir / "squeue", FAKE_SQUEUE),
    ):
        path.write_text(body)
        path.chmod(0o755)
    drop = {"VIRTUAL_ENV", "CONDA_PREFIX", "MASTER_ADDR", "MASTER_PORT", "TORCH_ELASTIC_SHUTDOWN_TIMEOUT"}
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("SLURM_", "PIXVOX_", "FAKE_")) and k not in drop
    }
    env.update(
        PATH=f"{bin_dir}:{os.environ.get('PATH', '/usr/bin:/bin')}",
        FAKE_LOG=str(log),
        FAKE_TIME_LEFT="1:30",
        SLURM_JOB_ID="12345",
        SLURM_SUBMIT_DIR=str(repo),
        SLURM_JOB_NODELIST="node-[a-b]",
        SLURM_JOB_NUM_NODES="2",
        SLURM_CPUS_PER_TASK="8",
    )
    return repo, log, env


def run_sbatch(env: dict[str, str], send: signal.Signals | None, log: Path) -> tuple[int, str]:
    """Run the batch script as SLURM would; once the training has started, send it ``send``."""
    proc = subprocess.Popen(
        ["bash", str(SBATCH), "configs/ppkt.yaml", "experiment.name=unit test"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        if send is not None:
            deadline = time.monotonic() + 20
            while not (log / "started").exists():
                assert proc.poll() is None, (
                    f"the script ended before the training started:\n{proc.stdout.read()}"
                )
                assert time.monotonic() < deadline, "the stand-in training did not start within 20 s"
                time.sleep(0.02)
            proc.send_signal(send)
        out, _ = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    return proc.returncode, out


def _read(path: Path) -> str | None:
    return path.read_text() if path.exists() else None


def test_sbatch_forwards_the_time_limit_signal_then_requeues(slurm_sandbox):
    _, log, env = slurm_sandbox
    rc, out = run_sbatch(env, signal.SIGTERM, log)
    assert rc == 0, out
    assert _read(log / "checkpoint") == "saved\n", out  # SIGTERM reached the training
    assert _read(log / "requeued") == "12345\n", out
    # Arguments pass through unchanged (one with a space), followed by --resume auto.
    assert _read(log / "args").splitlines() == [
        "configs/ppkt.yaml",
        "experiment.name=unit test",
        "--resume",
        "auto",
    ]
    srun = _read(log / "srun_args").splitlines()
    assert {"--nodes=2", "--ntasks-per-node=1", "--cpus-per-task=8"} <= set(srun)
    assert srun[srun.index("tools/pretrain.sh") - 1] == "bash"
    environment = dict(line.split("=", 1) for line in _read(log / "env").splitlines())
    assert environment == {
        "MASTER_ADDR": "node-a",  # first host of the job
        "MASTER_PORT": str(20000 + 12345 % 20000),
        "TORCH_ELASTIC_SHUTDOWN_TIMEOUT": "90",
        "OPENBLAS_NUM_THREADS": env.get("OPENBLAS_NUM_THREADS", "1"),
        "PIXVOX_SKIP_SETUP": "1",  # the nodes skip the setup check ...
    }
    assert _read(log / "setup_runs") == "run\n"  # ... which ran once, before srun


@pytest.mark.parametrize(
    "time_left, window, requeued",
    [
        ("1:30", 600, True),  # 90 s
        ("10:00", 600, True),  # 600 s, on the boundary
        ("10:01", 600, False),
        ("08:09", 500, True),  # 489 s: leading zeros are decimal, not octal
        ("08:09", 480, False),
        ("1:00:00", 3600, True),
        ("1-00:00:01", 86400, False),  # 86401 s
        ("3-04:00:00", 600, False),  # scancel or pre-emption far from the time limit
        ("UNLIMITED", 600, False),
        ("", 600, False),  # squeue gave nothing
    ],
)
def test_sbatch_requeues_only_near_the_time_limit(slurm_sandbox, time_left, window, requeued):
    _, log, env = slurm_sandbox
    env.update(FAKE_TIME_LEFT=time_left, PIXVOX_REQUEUE_WINDOW=str(window))
    rc, out = run_sbatch(env, signal.SIGTERM, log)
    assert rc == 0, out
    assert _read(log / "checkpoint") == "saved\n", out
    assert ((log / "requeued").exists()) == requeued, out


def test_sbatch_usr1_checkpoints_and_requeues_at_once(slurm_sandbox):
    _, log, env = slurm_sandbox
    env["FAKE_TIME_LEFT"] = "20:00:00"
    rc, out = run_sbatch(env, signal.SIGUSR1, log)
    assert rc == 0, out
    assert _read(log / "checkpoint") == "saved\n" and _read(log / "requeued") == "12345\n", out


def test_sbatch_stops_requeueing_after_the_limit(slurm_sandbox):
    _, log, env = slurm_sandbox
    env.update(SLURM_RESTART_COUNT="3", PIXVOX_MAX_REQUEUES="3")
    rc, out = run_sbatch(env, signal.SIGTERM, log)
    assert rc == 0 and not (log / "requeued").exists(), out
    assert "PIXVOX_MAX_REQUEUES=3" in out


def test_sbatch_passes_on_the_exit_status_of_a_run_that_ends_by_itself(slurm_sandbox):
    _, log, env = slurm_sandbox
    env.update(FAKE_EXIT="3", PIXVOX_RESUME="none", PIXVOX_SKIP_SETUP="1")
    rc, out = run_sbatch(env, None, log)
    assert rc == 3, out
    assert not (log / "requeued").exists() and not (log / "checkpoint").exists()
    assert _read(log / "args").splitlines() == [
        "configs/ppkt.yaml",
        "experiment.name=unit test",
        "--resume",
        "none",
    ]
    assert not (log / "setup_runs").exists()  # PIXVOX_SKIP_SETUP=1 given by the user


def test_sbatch_stops_before_srun_when_the_setup_check_fails(slurm_sandbox):
    _, log, env = slurm_sandbox
    env["FAKE_SETUP_EXIT"] = "1"
    rc, out = run_sbatch(env, None, log)
    assert rc == 2 and "tools/setup_env.sh failed" in out, out
    assert not (log / "srun_args").exists()


def test_sbatch_refuses_to_run_outside_slurm_or_the_repository(slurm_sandbox, tmp_path):
    repo, log, env = slurm_sandbox
    outside = {k: v for k, v in env.items() if k != "SLURM_JOB_ID"}
    rc, out = run_sbatch(outside, None, log)
    assert rc == 2 and "sbatch tools/slurm_pretrain.sbatch" in out
    (repo / "tools" / "pretrain.sh").unlink()
    rc, out = run_sbatch(env, None, log)
    assert rc == 2 and "submit from the pixvox repository root" in out
    assert not (log / "srun_args").exists()
