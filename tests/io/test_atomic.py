"""Atomic writes: complete content or nothing under the final name, also when the writer is killed."""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from pixvox.io.atomic import (
    atomic_open,
    atomic_save_npz,
    atomic_write_bytes,
    atomic_write_json,
    is_temp_file,
    remove_stale_temp_files,
    sha256_file,
)

REPO = Path(__file__).resolve().parents[2]


def test_write_replace_and_hash(tmp_path, seed):
    rng = np.random.default_rng(seed)
    data = rng.bytes(int(rng.integers(1, 200_000)))
    p = tmp_path / "sub" / "a.bin"
    atomic_write_bytes(p, b"old")
    atomic_write_bytes(p, data)
    assert p.read_bytes() == data
    assert sha256_file(p, chunk_bytes=4096) == hashlib.sha256(data).hexdigest()
    assert [q.name for q in p.parent.iterdir()] == ["a.bin"]  # no temp file left


def test_exception_keeps_old_content_and_removes_temp(tmp_path):
    p = tmp_path / "a.txt"
    atomic_write_bytes(p, b"old")
    with pytest.raises(RuntimeError), atomic_open(p, "wb") as f:
        f.write(b"partial new content")
        raise RuntimeError("writer failed midway")
    assert p.read_bytes() == b"old"
    assert sorted(q.name for q in tmp_path.iterdir()) == ["a.txt"]


def test_json_refuses_nan(tmp_path):
    with pytest.raises(ValueError):
        atomic_write_json(tmp_path / "x.json", {"a": float("nan")})
    assert not (tmp_path / "x.json").exists()


def test_npz_digest_matches_file(tmp_path, seed):
    rng = np.random.default_rng(seed)
    arrays = {"a": rng.normal(size=(5, 3)), "b": rng.integers(0, 9, 7).astype(np.int32)}
    digest = atomic_save_npz(tmp_path / "s.npz", arrays)
    assert digest == sha256_file(tmp_path / "s.npz")
    with np.load(tmp_path / "s.npz") as z:
        for k, v in arrays.items():
            np.testing.assert_array_equal(z[k], v)


def test_sigkill_mid_write_leaves_no_final_file(tmp_path):
    target = tmp_path / "big.bin"
    code = (
        "import sys, time\n"
        f"sys.path.insert(0, {str(REPO / 'src')!r})\n"
        "from pixvox.io.atomic import atomic_open\n"
        f"with atomic_open({str(target)!r}, 'wb') as f:\n"
        "    f.write(b'x' * 1000); f.flush(); print('started', flush=True)\n"
        "    time.sleep(60)\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "started"
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert not target.exists()
    leftovers = list(tmp_path.iterdir())
    assert len(leftovers) == 1 and is_temp_file(leftovers[0])
    assert remove_stale_temp_files(tmp_path) == 1
    assert list(tmp_path.iterdir()) == []


def test_write_delay_hook_holds_the_temp_file_until_the_rename(tmp_path):
    """PIXVOX_FAULT_WRITE_DELAY (testing hook): a kill inside the delay leaves the complete temp file and
    nothing under the final name; names not matching the hook's pattern are written without delay."""
    target, other = tmp_path / "step_00000002.pt", tmp_path / "other.bin"
    code = (
        f"import sys\nsys.path.insert(0, {str(REPO / 'src')!r})\n"
        "from pixvox.io.atomic import atomic_write_bytes\n"
        f"atomic_write_bytes({str(other)!r}, b'y')\n"
        f"atomic_write_bytes({str(target)!r}, b'x' * 1000)\n"
    )
    env = {**os.environ, "PIXVOX_FAULT_WRITE_DELAY": "60:step_*.pt"}
    proc = subprocess.Popen([sys.executable, "-c", code], env=env)
    try:
        # Wait for the target's temp file to hold all its bytes. other.bin's own temp file lives only
        # for an instant (no delay for that name), so only the target's counts, and a temp file seen
        # while it is still being written is looked at again.
        temps: list[Path] = []
        for _ in range(3000):
            temps = [p for p in tmp_path.iterdir() if is_temp_file(p) and target.name in p.name]
            if (temps and temps[0].stat().st_size == 1000) or proc.poll() is not None:
                break
            time.sleep(0.01)
        assert len(temps) == 1 and temps[0].read_bytes() == b"x" * 1000  # written, held before the rename
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert other.read_bytes() == b"y" and not target.exists()


def test_json_keeps_non_ascii_only_when_asked(tmp_path):
    atomic_write_json(tmp_path / "a.json", {"note": "−1 τ"})
    atomic_write_json(tmp_path / "b.json", {"note": "−1 τ"}, ensure_ascii=False)
    assert (tmp_path / "a.json").read_text() == '{\n "note": "\\u22121 \\u03c4"\n}\n'
    assert (tmp_path / "b.json").read_text(encoding="utf-8") == '{\n "note": "−1 τ"\n}\n'
