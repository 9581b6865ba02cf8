"""pixvox.engine.launch: a launch whose data already exist checks them without loading torch."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

CHECK = """
import sys
from pixvox.engine.launch import run_job
run_job({job!r}, [{config!r}, 'data.root={root}', '--prepare-data'])
heavy = sorted(m for m in ('torch', 'scipy', 'MinkowskiEngine') if m in sys.modules)
print('heavy:', heavy)
"""


@pytest.mark.parametrize(
    ("job", "config", "folder"),
    [
        ("pretrain", "configs/pretrain/quickstart.yaml", "fusions"),
        ("finetune", "configs/finetune/synthetic.yaml", "clouds"),
    ],
)
def test_prepare_data_with_data_present_imports_no_torch(tmp_path, job, config, folder):
    root = tmp_path / folder
    root.mkdir()
    (root / "index.json").write_text("{}")  # only its presence is checked before the job opens it
    code = CHECK.format(job=job, config=config, root=root)
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().endswith("heavy: []"), out.stdout + out.stderr


def test_prepare_data_without_data_still_makes_them(tmp_path):
    """The preparers imported lazily still run: a tiny synthetic dataset is generated and fused."""
    root = tmp_path / "synthetic" / "fusions"
    code = (
        "from pixvox.engine.launch import run_job\n"
        f"run_job('pretrain', ['configs/pretrain/quickstart.yaml', 'data.root={root}', "
        "'data.synthetic.scenes=1', 'data.synthetic.frames_per_scene=2', '--prepare-data'])\n"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert (root / "index.json").is_file() and len(list(root.rglob("*.npz"))) >= 1, out.stderr
