"""The ``seed`` fixture (issue 14 item 5): a fixed default, PIXVOX_TEST_SEED overrides it, and a
failing test reports the seed it ran with."""

from __future__ import annotations

import os
import subprocess
import sys

from .conftest import DEFAULT_TEST_SEED, REPO, SEED_ENV

PROBE = """
def test_probe(seed):
    print("SEED", seed)
    assert False
"""


def _run(tmp_path, env_seed: str | None) -> str:
    (tmp_path / "test_probe.py").write_text(PROBE)
    env = {k: v for k, v in os.environ.items() if k != SEED_ENV}
    if env_seed is not None:
        env[SEED_ENV] = env_seed
    cmd = [sys.executable, "-m", "pytest", "-p", "tests.conftest", "-p", "no:cacheprovider"]
    res = subprocess.run(
        [*cmd, str(tmp_path / "test_probe.py")], cwd=REPO, env=env, capture_output=True, text=True
    )
    assert res.returncode == 1, res.stdout + res.stderr
    return res.stdout


def test_default_seed_is_fixed_and_reported_on_failure(tmp_path):
    out = _run(tmp_path, None)  # the same seed in every run, not one drawn from the clock
    assert f"SEED {DEFAULT_TEST_SEED}" in out
    assert f"replay: {SEED_ENV}={DEFAULT_TEST_SEED} python -m pytest" in out
    assert f"pixvox test seed: {DEFAULT_TEST_SEED} (default" in out


def test_the_environment_overrides_the_seed(tmp_path):
    out = _run(tmp_path, "77")
    assert "SEED 77" in out and f"replay: {SEED_ENV}=77" in out
