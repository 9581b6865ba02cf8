"""Reading the ``index.json`` of a prepared dataset (fusions, labeled clouds): one place for the checks
every index gets before its own fields are read."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


def read_index_json(
    path: Path, fmt: str, version: int, error: type[Exception], missing: str
) -> dict[str, Any]:
    """The JSON object in ``path`` after checking that it exists, parses, and names format ``fmt`` at
    ``version``; otherwise raises ``error`` with a message naming ``path``. ``missing``: what to say
    (and do) when the file is absent."""
    if not path.is_file():
        raise error(f"{path}: missing; {missing}")
    try:
        d = json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise error(f"{path}: not valid JSON ({err})") from err
    if not isinstance(d, dict):
        raise error(f"{path}: expected a JSON object, found {type(d).__name__}")
    if d.get("format") != fmt:
        raise error(f"{path}: format is {d.get('format')!r}, expected {fmt!r}")
    if d.get("version") != version:
        raise error(f"{path}: version {d.get('version')} is not supported (this pixvox reads {version})")
    return d
