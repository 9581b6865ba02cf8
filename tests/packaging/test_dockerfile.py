"""The Dockerfile is the setup script's install of setup.py's versions; .dockerignore keeps data out.

The Dockerfile is read with dockerfile-parse (continuations, comments, ARG defaults substituted into
FROM and ENV); the checks then look at the resolved base image, build arguments, environment and the
order of COPY and RUN instructions of the last stage.
"""

from __future__ import annotations

import io
import posixpath
import re
import shlex
from dataclasses import dataclass

import pytest
from dockerfile_parse import DockerfileParser

from tests.packaging.common import DOCKERFILE, DOCKERIGNORE, REPO, min_python
from tests.packaging.dockerignore import DockerIgnore

# Oldest GPU architecture each CUDA major release can compile for (CUDA 12 dropped Kepler, 13 dropped
# Maxwell, Pascal and Volta).
MIN_ARCH_FOR_CUDA = {11: (3, 5), 12: (5, 0), 13: (7, 5)}
# Python of the Ubuntu releases an nvidia/cuda image may be based on.
UBUNTU_PYTHON = {"20.04": (3, 8), "22.04": (3, 10), "24.04": (3, 12)}
# What tools/setup_env.sh needs in the image before it runs.
SETUP_INPUTS = ("tools/setup_env.sh", "patches", "setup.py", "pyproject.toml", "src", "cuda_ext")
# Default-value forms of variable substitution, which dockerfile-parse leaves unresolved.
_DEFAULT_FORM = re.compile(r"\$\{[A-Za-z_][A-Za-z0-9_]*:[-+]")


@dataclass
class Instruction:
    keyword: str  # upper case: FROM, ARG, ENV, RUN, ...
    args: str  # the arguments, continuation lines joined
    line: int  # 1-based line where the instruction starts


@dataclass
class DockerfileModel:
    base_image: str
    args: dict[str, str]  # ARGs of the last stage, with defaults, expanded
    env: dict[str, str]  # ENV of the last stage, expanded
    instructions: list[Instruction]  # of the last stage


def read_dockerfile(text: str) -> DockerfileModel:
    """The last stage of a Dockerfile: base image, ARG and ENV values, instructions (comments dropped)."""
    parser = DockerfileParser(fileobj=io.BytesIO(text.encode()))
    structure = [s for s in parser.structure if s["instruction"] != "COMMENT"]
    froms = [i for i, s in enumerate(structure) if s["instruction"] == "FROM"]
    if not froms:
        raise ValueError("Dockerfile has no FROM instruction")
    stage = structure[froms[-1] + 1 :]
    for s in stage:
        if s["instruction"] in ("ARG", "ENV") and _DEFAULT_FORM.search(s["value"]):
            raise ValueError(
                f"Dockerfile line {s['startline'] + 1}: ${{VAR:-default}} / ${{VAR:+alt}} are not resolved "
                "by the reader of these checks; write plain ${VAR}"
            )
    return DockerfileModel(
        base_image=parser.baseimage,
        args=dict(parser.args),
        env=dict(parser.envs),
        instructions=[Instruction(s["instruction"], s["value"], s["startline"] + 1) for s in stage],
    )


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
    model = read_dockerfile(text)
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
    if not any(
        i.keyword == "RUN" and re.search(r"apt-get install[^;&|]*\bpatch\b", i.args)
        for i in model.instructions
    ):
        problems.append(
            "the image does not install patch, which tools/setup_env.sh needs for the MinkowskiEngine patch set"
        )
    launch = " ".join(i.args for i in model.instructions if i.keyword in ("ENTRYPOINT", "CMD"))
    if "tools/pretrain.sh" not in launch:
        problems.append("neither ENTRYPOINT nor CMD runs tools/pretrain.sh")
    return problems


def dockerfile_copy_sources(text: str) -> list[str]:
    """Paths in the build context that COPY/ADD instructions read (``.`` excluded)."""
    sources = []
    for ins in read_dockerfile(text).instructions:
        if ins.keyword in ("COPY", "ADD"):
            words = shlex.split(ins.args)
            if any(w.startswith("--from") for w in words):
                continue
            words = [w for w in words if not w.startswith("--")]
            sources += [_norm(w) for w in words[:-1] if _norm(w)]
    return sources


# ====================================================================================== the tests
def test_dockerfile_installs_setup_py_versions_through_the_setup_script(constants):
    assert dockerfile_problems(DOCKERFILE.read_text(), constants) == []
    model = read_dockerfile(DOCKERFILE.read_text())
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
        ("COPY patches/ patches/\n", "", "before patches is copied"),
        ("ca-certificates patch python3", "ca-certificates python3", "does not install patch"),
        ("tools/pretrain.sh", "tools/train.sh", "tools/pretrain.sh"),
    ],
)
def test_dockerfile_checker_finds_a_mismatch(constants, old, new, expected):
    text = DOCKERFILE.read_text()
    assert old in text, f"the Dockerfile no longer contains {old!r}; update this test case"
    problems = dockerfile_problems(text.replace(old, new), constants)
    assert any(expected in p for p in problems), problems


def test_dockerfile_reader_resolves_what_the_checks_read():
    text = (
        "ARG BASE=12.8.1\n"
        "FROM nvidia/cuda:${BASE}-devel-ubuntu22.04 AS build\n"
        "RUN echo first stage\n"
        "FROM nvidia/cuda:${BASE}-runtime-ubuntu22.04\n"
        "ARG BASE\n"
        "ARG LIST='8.0;9.0'\n"
        "# a comment\n"
        "ENV A=1 \\\n"
        "    # comments inside a continuation are dropped\n"
        '    B="two words" C=${LIST}\n'
        "ENV F before-${A}\n"
        "RUN echo $LIST\n"
    )
    model = read_dockerfile(text)
    # ARG defaults reach FROM and ENV; only the last stage's instructions are kept.
    assert model.base_image == "nvidia/cuda:12.8.1-runtime-ubuntu22.04"
    assert model.args == {"BASE": "12.8.1", "LIST": "8.0;9.0"}
    assert model.env == {"A": "1", "B": "two words", "C": "8.0;9.0", "F": "before-1"}
    assert [i.keyword for i in model.instructions] == ["ARG", "ARG", "ENV", "ENV", "RUN"]
    assert model.instructions[2].line == 8 and model.instructions[4].args == "echo $LIST"
    with pytest.raises(ValueError, match="FROM"):
        read_dockerfile("RUN true\n")
    with pytest.raises(ValueError, match="line 3"):
        read_dockerfile("FROM x\nARG V=1\nENV W=${V:-2}\n")


def test_dockerfile_copy_sources_exist_and_reach_the_build_context():
    rules = DockerIgnore(DOCKERIGNORE.read_text())
    sources = dockerfile_copy_sources(DOCKERFILE.read_text())
    assert set(SETUP_INPUTS) <= set(sources)
    for src in sources:
        assert (REPO / src).exists(), f"the Dockerfile copies {src}, which is not in the repository"
        assert not rules.excluded(src), f"the Dockerfile copies {src}, which .dockerignore excludes"
