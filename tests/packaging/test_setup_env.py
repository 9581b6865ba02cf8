"""setup.py, tools/setup_env.sh and environment.yml agree on the versions and on who installs what.

torch and MinkowskiEngine are installed by tools/setup_env.sh alone, at setup.py's versions; the
conda environment brings only Python, compilers, OpenBLAS and ``patch``; files that name a torch or
MinkowskiEngine version name setup.py's.
"""

from __future__ import annotations

import re

import pytest
import yaml

from tests.packaging.common import (
    CLUSTER_DOC,
    DOCKERFILE,
    ENVIRONMENT,
    SBATCH,
    SETUP_ENV,
    SETUP_PY,
    min_python,
    setup_constants,
)


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
    if (
        not re.search(r"^PATCH_DIR=\"\$REPO/patches/minkowskiengine\"", text, re.M)
        or '"$PATCH_DIR/series"' not in text
    ):
        problems.append("setup_env.sh does not apply the patch set listed in patches/minkowskiengine/series")
    if not re.search(r'^ME_KEY="[^"\n]*\$\{PATCH_HASH\}', text, re.M):
        problems.append(
            "setup_env.sh: the MinkowskiEngine wheel cache key ME_KEY does not carry the patch set hash"
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
    for needed in ("pip", "openblas", "patch"):
        if needed not in names:
            problems.append(f"{needed} is not in the dependencies")
    if not _CXX_COMPILERS & set(names):
        problems.append(f"no C++ compiler ({', '.join(sorted(_CXX_COMPILERS))}) in the dependencies")
    pip_names = {re.split(r"[\s=<>!~\[]", d, maxsplit=1)[0].lower() for d in pip_deps}
    pinned_here = _NOT_IN_CONDA & (set(names) | pip_names)
    if pinned_here:
        problems.append(f"{sorted(pinned_here)} listed in environment.yml; tools/setup_env.sh installs them")
    return problems


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
        ("-patches${PATCH_HASH}", "", "cache key ME_KEY"),
        ('"$PATCH_DIR/series"', '"$PATCH_DIR/list"', "patch set"),
    ],
)
def test_setup_env_checker_finds_a_mismatch(constants, old, new, expected):
    text = SETUP_ENV.read_text()
    assert old in text
    problems = setup_env_problems(text.replace(old, new), constants)
    assert any(expected in p for p in problems), problems


def test_environment_yml_leaves_torch_and_minkowskiengine_to_the_script(constants):
    assert environment_problems(ENVIRONMENT.read_text(), constants) == []


@pytest.mark.parametrize(
    "old, new, expected",
    [
        ("python=3.11", "python=3.8", "older than python_requires"),
        ("python=3.11", "python>=3.9", "not pinned"),
        ("  - openblas\n", "", "openblas is not in the dependencies"),
        ("  - patch\n", "", "patch is not in the dependencies"),
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
