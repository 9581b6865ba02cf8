"""tools/finetune_seg.sh dispatch: dataset names → configs, data preparation first, the no-argument
comparison refusing to start without the Quickstart checkpoint. Runs a copy of the tools with a
``python`` stand-in that prints its arguments (the training itself is tested elsewhere)."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
from pathlib import Path

from .conftest import REPO


def _fake_repo(tmp_path: Path) -> tuple[Path, dict]:
    repo = tmp_path / "repo"
    (repo / "tools").mkdir(parents=True)
    for name in ("finetune_seg.sh", "launch.sh"):
        shutil.copy(REPO / "tools" / name, repo / "tools" / name)
    shutil.copytree(REPO / "configs" / "finetune", repo / "configs" / "finetune")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in ("python", "torchrun"):
        p = bin_dir / tool
        p.write_text(f'#!/bin/sh\necho "{tool} $*"\n')
        p.chmod(p.stat().st_mode | stat.S_IEXEC)
    env = {
        "PATH": f"{bin_dir}:{os.environ['PATH']}",
        "PIXVOX_SKIP_SETUP": "1",
        "PIXVOX_NO_VENV": "1",
        "NGPUS": "1",
        "HOME": str(tmp_path),
    }
    return repo, env


def _run(repo: Path, env: dict, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["bash", str(repo / "tools/finetune_seg.sh"), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_no_arguments_without_quickstart_checkpoint_says_what_to_run(tmp_path):
    repo, env = _fake_repo(tmp_path)
    r = _run(repo, env)
    assert r.returncode == 2
    assert "bash tools/pretrain.sh" in r.stderr and "outputs/quickstart/checkpoints" in r.stderr
    assert "python" not in r.stdout  # nothing started


def test_no_arguments_runs_pretrained_then_scratch_then_compares(tmp_path):
    repo, env = _fake_repo(tmp_path)
    (repo / "outputs/quickstart/checkpoints").mkdir(parents=True)
    (repo / "outputs/quickstart/checkpoints/step_00000300.pt").write_bytes(b"")
    lines = _run(repo, env).stdout.splitlines()
    assert lines[0] == "python tools/finetune_seg.py --prepare-data configs/finetune/synthetic.yaml"
    assert "init.mode=pretrained init.checkpoint=outputs/quickstart" in lines[1]
    assert "init.mode=scratch" in lines[2]
    assert lines[3].startswith("python tools/finetune_seg.py --compare outputs/finetune_synthetic_pretrained")


def test_dataset_names_pick_configs_and_pass_overrides(tmp_path):
    repo, env = _fake_repo(tmp_path)
    r = _run(repo, env, "s3dis", "train.max_steps=5", "--resume", "none")
    assert r.stdout.splitlines() == [  # one process prepares its own data: no separate start
        "python tools/finetune_seg.py configs/finetune/s3dis_area5.yaml train.max_steps=5 --resume none",
    ]
    r = _run(repo, env, "scannet", "configs/finetune/scannet_points20.yaml", "data.subset.seed=1")
    assert (
        r.stdout.splitlines()[-1]
        == "python tools/finetune_seg.py configs/finetune/scannet_points20.yaml data.subset.seed=1"
    )
    r = _run(repo, env, "nonsense")
    assert r.returncode == 2 and "scannet_points20" in r.stderr  # lists the datasets it knows
    env2 = dict(env, NGPUS="2")
    r = _run(repo, env2, "scannet")
    assert (
        r.stdout.splitlines()[0]
        == "python tools/finetune_seg.py --prepare-data configs/finetune/scannet.yaml"
    )
    assert r.stdout.splitlines()[-1].startswith("torchrun --nnodes=1 --nproc-per-node=2")


def _visible_gpus(tmp_path: Path, env: dict, smi_lines: int | None) -> str:
    """pixvox_visible_gpus with a stand-in nvidia-smi listing ``smi_lines`` GPUs (None: not installed) and a
    ``python`` stand-in that answers 8 (what torch would count)."""
    bin_dir = tmp_path / "gpubin"
    bin_dir.mkdir(exist_ok=True)
    smi = bin_dir / "nvidia-smi"
    if smi_lines is not None:
        body = "".join(f"echo 'GPU {i}: NVIDIA H200 (UUID: GPU-{i})'\n" for i in range(smi_lines))
        smi.write_text(f"#!/bin/sh\n{body}")
        smi.chmod(0o755)
    elif smi.exists():
        smi.unlink()
    py = bin_dir / "python"
    py.write_text("#!/bin/sh\necho 8\n")
    py.chmod(0o755)
    script = f"source {REPO / 'tools/launch.sh'}; pixvox_visible_gpus"
    path = f"{bin_dir}:/usr/bin:/bin"
    r = subprocess.run(
        ["bash", "-c", script], env={**env, "PATH": path}, capture_output=True, text=True, timeout=30
    )
    assert r.returncode == 0, r.stderr
    return r.stdout.strip()


def test_visible_gpus_ask_torch_only_where_there_may_be_several(tmp_path):
    base = {"HOME": str(tmp_path)}
    assert _visible_gpus(tmp_path, base, None) == "1"  # no nvidia-smi: one process, torch not imported
    assert _visible_gpus(tmp_path, base, 1) == "1"
    assert _visible_gpus(tmp_path, base, 4) == "8"  # several listed: torch's count decides
    assert _visible_gpus(tmp_path, {**base, "CUDA_VISIBLE_DEVICES": ""}, 4) == "1"
    assert _visible_gpus(tmp_path, {**base, "CUDA_VISIBLE_DEVICES": "-1"}, 4) == "1"
    assert _visible_gpus(tmp_path, {**base, "CUDA_VISIBLE_DEVICES": "3"}, 4) == "1"
    assert _visible_gpus(tmp_path, {**base, "CUDA_VISIBLE_DEVICES": "0,1"}, 4) == "8"
