"""A wheel-installed pixvox (``pip install .``, not editable), used from a folder outside the repository,
makes the Quickstart's data: the synthetic rooms and their fusions, from the command line and from the
pretraining config (what ``tools/pretrain.sh`` runs first).

The wheel is built once per test session, in the repository as ``pip install .`` does, so the compiled
kernels in ``build/`` are reused by later sessions: the first build compiles cuda_ext (minutes on two
cores), later ones take seconds. The data step itself is kept to one small room.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from .conftest import REPO


def run(cmd: list[str], **kw) -> subprocess.CompletedProcess:
    proc = subprocess.run(cmd, capture_output=True, text=True, **kw)
    assert proc.returncode == 0, f"{' '.join(cmd)}\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return proc


@pytest.fixture(scope="session")
def installed_wheel(tmp_path_factory) -> Path:
    """pixvox built as a wheel from the working tree and installed (without dependencies, which the test
    interpreter has) into a folder of its own; returns that folder."""
    base = tmp_path_factory.mktemp("wheel")
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check"]
    t0 = time.perf_counter()
    run([*pip, "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(base / "dist"), str(REPO)])
    wheels = sorted((base / "dist").glob("pixvox-*.whl"))
    assert len(wheels) == 1, wheels
    run([*pip, "install", "--no-deps", "--no-index", "-q", "--target", str(base / "site"), str(wheels[0])])
    print(f"[wheel] built and installed in {time.perf_counter() - t0:.1f} s")
    return base / "site"


@pytest.mark.slow
def test_installed_wheel_makes_the_quickstart_data(installed_wheel, tmp_path):
    env = {**os.environ, "PYTHONPATH": str(installed_wheel), "OPENBLAS_NUM_THREADS": "1"}
    work = tmp_path / "elsewhere"  # outside the repository: no data_prep/, no configs/ next to it
    work.mkdir()
    py = [sys.executable, "-c"]
    where = run([*py, "import pixvox.prep; print(pixvox.prep.__file__)"], env=env, cwd=work).stdout.strip()
    assert Path(where).is_relative_to(installed_wheel), where
    # The command line a user of the wheel runs (docs/data.md, Quickstart).
    gen = ["synthetic", "--out", "data/synthetic", "--scenes", "1", "--frames", "2", "--image-size", "48x64"]
    run([sys.executable, "-m", "pixvox.prep", *gen], env=env, cwd=work)
    fuse = [
        "fusions",
        "--frames",
        "data/synthetic/frames",
        "--out",
        "data/synthetic/fusions",
        "--no-progress",
    ]
    run([sys.executable, "-m", "pixvox.prep", *fuse], env=env, cwd=work)
    index = json.loads((work / "data/synthetic/fusions/index.json").read_text())
    assert [s["name"] for s in index["samples"]] == ["synth0000_000000", "synth0000_000001"]
    # The pretraining config's first-use preparation (synthetic default dataset), from the wheel.
    config = REPO / "configs/pretrain/quickstart.yaml"
    script = (
        "from pixvox.config import PretrainConfig, load_config\n"
        "from pixvox.prep.ensure import ensure_pretrain_data\n"
        f"cfg = load_config(PretrainConfig, {str(config)!r}, ['data.root=q/fusions', 'data.synthetic.scenes=1',"
        " 'data.synthetic.frames_per_scene=2', 'data.synthetic.image_size=[48, 64]'])\n"
        "print(ensure_pretrain_data(cfg))\n"
    )
    run([*py, script], env=env, cwd=work)
    assert len(json.loads((work / "q/fusions/index.json").read_text())["samples"]) == 2
    assert (work / "q/clouds/index.json").is_file()
