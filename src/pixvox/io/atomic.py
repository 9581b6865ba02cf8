"""Atomic file writes: a file either has its complete new content or does not exist under its name.

Every writer here writes to a hidden temporary file in the destination folder and then renames it
with :func:`os.replace`, which is atomic on POSIX file systems. A process killed midway (SIGKILL,
out of memory) leaves at most a ``.<name>.tmp-<pid>-<random>`` file behind, never a truncated file
under the real name. :func:`remove_stale_temp_files` cleans those up on the next run.

``fsync=True`` additionally flushes the data to disk before the rename (survives power loss); it
costs a disk round trip per file, so per-frame files skip it and index files use it.

Testing hook (pixvox.bench.faults): ``PIXVOX_FAULT_WRITE_DELAY=SECONDS[:GLOB]`` sleeps that long after
the temporary file is written and before the rename (only for destination names matching ``GLOB``,
e.g. ``step_*.pt``), so a fault campaign can land ``kill -9`` inside an atomic write. Unset in
normal use; it changes no content.
"""

from __future__ import annotations

import contextlib
import fnmatch
import hashlib
import io
import json
import os
import time
import uuid
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import IO, Any

import numpy as np

#: Marker inside the names of temporary files (``.<name>.tmp-<pid>-<hex>``).
TEMP_MARKER = ".tmp-"
#: Environment variable of the testing hook described in the module docstring.
FAULT_WRITE_DELAY_ENV = "PIXVOX_FAULT_WRITE_DELAY"


def _fault_write_delay(path: Path) -> None:
    """The testing hook: sleep between writing the temporary file and renaming it (see the module doc)."""
    spec = os.environ.get(FAULT_WRITE_DELAY_ENV)
    if not spec:
        return
    seconds, _, pattern = spec.partition(":")
    if not pattern or fnmatch.fnmatch(path.name, pattern):
        time.sleep(float(seconds))


def _temp_path(path: Path) -> Path:
    return path.with_name(f".{path.name}{TEMP_MARKER}{os.getpid()}-{uuid.uuid4().hex[:8]}")


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:  # pragma: no cover - platforms without directory fds
        return
    try:
        os.fsync(fd)
    except OSError:  # pragma: no cover
        pass
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_open(path: str | os.PathLike, mode: str = "wb", *, fsync: bool = False) -> Iterator[IO[Any]]:
    """Open a temporary file next to ``path``; on a clean exit rename it to ``path``.

    On an exception the temporary file is removed and ``path`` keeps its previous content (or stays
    absent). Parent folders are created. ``mode`` is ``"wb"`` or ``"w"`` (text, UTF-8).
    """
    if mode not in ("wb", "w"):
        raise ValueError(f"atomic_open supports modes 'wb' and 'w', got {mode!r}")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _temp_path(path)
    f = open(tmp, mode, encoding=None if "b" in mode else "utf-8")
    try:
        yield f
        f.flush()
        if fsync:
            os.fsync(f.fileno())
        f.close()
        _fault_write_delay(path)
        os.replace(tmp, path)
        if fsync:
            _fsync_dir(path.parent)
    except BaseException:
        f.close()
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise


def atomic_write_bytes(path: str | os.PathLike, data: bytes, *, fsync: bool = False) -> None:
    """Write ``data`` to ``path`` atomically."""
    with atomic_open(path, "wb", fsync=fsync) as f:
        f.write(data)


def atomic_write_text(path: str | os.PathLike, text: str, *, fsync: bool = False) -> None:
    """Write UTF-8 ``text`` to ``path`` atomically."""
    atomic_write_bytes(path, text.encode("utf-8"), fsync=fsync)


def atomic_write_json(
    path: str | os.PathLike,
    obj: Any,
    *,
    indent: int | None = 1,
    fsync: bool = True,
    ensure_ascii: bool = True,
) -> None:
    """Write ``obj`` as JSON (plus a trailing newline) atomically; NaN/inf are refused (not JSON).
    ``ensure_ascii=False`` keeps non-ASCII text as UTF-8 (files people also edit by hand)."""
    text = json.dumps(obj, indent=indent, allow_nan=False, ensure_ascii=ensure_ascii)
    atomic_write_text(path, text + "\n", fsync=fsync)


def npz_bytes(arrays: Mapping[str, np.ndarray]) -> bytes:
    """Serialize ``arrays`` as an uncompressed ``.npz`` (``np.savez``) in memory."""
    buf = io.BytesIO()
    np.savez(buf, **{k: np.asarray(v) for k, v in arrays.items()})
    return buf.getvalue()


def atomic_save_npz(path: str | os.PathLike, arrays: Mapping[str, np.ndarray], *, fsync: bool = False) -> str:
    """Write ``arrays`` as an uncompressed ``.npz`` atomically; returns the SHA-256 hex digest of the file."""
    data = npz_bytes(arrays)
    atomic_write_bytes(path, data, fsync=fsync)
    return hashlib.sha256(data).hexdigest()


def sha256_file(path: str | os.PathLike, chunk_bytes: int = 1 << 22) -> str:
    """SHA-256 hex digest of a file, read in chunks (bounded memory)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(chunk_bytes):
            h.update(chunk)
    return h.hexdigest()


def is_temp_file(path: str | os.PathLike) -> bool:
    """Whether ``path`` is a temporary file left by an interrupted atomic write."""
    name = Path(path).name
    return name.startswith(".") and TEMP_MARKER in name


def remove_stale_temp_files(folder: str | os.PathLike, recursive: bool = False) -> int:
    """Delete temporary files left by interrupted writes in ``folder``; returns how many.

    Call it only when no other process is writing into ``folder``.
    """
    folder = Path(folder)
    if not folder.is_dir():
        return 0
    pattern = f"**/.*{TEMP_MARKER}*" if recursive else f".*{TEMP_MARKER}*"
    n = 0
    for p in folder.glob(pattern):
        if p.is_file() and is_temp_file(p):
            with contextlib.suppress(FileNotFoundError):
                p.unlink()
                n += 1
    return n
