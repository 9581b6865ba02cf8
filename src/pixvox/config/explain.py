"""A resolved config as YAML with, on each line, where the value came from (``pixvox config``).

Origins: ``default`` (the schema in src/pixvox/config), ``file`` (the config named on the command
line), ``_base_ <file>`` (a file it inherits from) or ``command line`` (an override). The output
is valid YAML and loads back into the same config.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from pixvox.config.loader import CLI, to_dict

__all__ = ["origin_label", "explain_config"]


def origin_label(key: str, origins: Mapping[str, str], main_file: str | Path | None) -> str:
    """Where the dotted leaf ``key``'s value came from, in words. Only the leaf's own record counts:
    a section named in a file or override does not make its unset keys come from there."""
    src = origins.get(key, "")
    if not src:
        return "default"
    if src == CLI:
        return CLI
    if main_file is not None and Path(src) == Path(main_file).resolve():
        return "file"
    try:
        shown = os.path.relpath(src)
    except ValueError:  # another drive (Windows)
        shown = src
    return f"_base_ {src if shown.startswith('..') else shown}"


def _flow(value: Any) -> str:
    """One value in YAML flow style on one line (``[120, 160]``, ``null``, ``'a: b'``)."""
    text = yaml.safe_dump({"v": value}, default_flow_style=True, width=1 << 30).strip()
    return text[len("{v: ") : -1]


def explain_config(cfg: Any, origins: Mapping[str, str], main_file: str | Path | None = None) -> str:
    """YAML of ``cfg`` with a ``# origin`` comment on every leaf, comments aligned per section."""
    lines: list[str] = []

    def walk(node: Mapping[str, Any], prefix: str, indent: int) -> None:
        leaves = [(k, v) for k, v in node.items() if not (isinstance(v, Mapping) and v)]
        width = max((indent + len(k) + 2 + len(_flow(v)) for k, v in leaves), default=0)
        for key, value in node.items():
            dotted = f"{prefix}{key}"
            if isinstance(value, Mapping) and value:
                lines.append(f"{' ' * indent}{key}:")
                walk(value, dotted + ".", indent + 2)
                continue
            text = f"{' ' * indent}{key}: {_flow(value)}"
            lines.append(f"{text.ljust(width)}  # {origin_label(dotted, origins, main_file)}")

    walk(to_dict(cfg), "", 0)
    return "\n".join(lines) + "\n"
