"""YAML → typed dataclass configs.

- ``_base_: other.yaml`` (or a list) at the top of a file inherits from files relative to it; later
  files and keys override earlier ones, dicts merge key by key.
- Command-line overrides ``a.b.c=value`` (values parsed as YAML: ``3``, ``0.5``, ``true``, ``[1,2]``).
- Every key is checked against the dataclass schema: an unknown key, a wrong type or a missing file
  raises :class:`ConfigError` naming the key and the file it came from.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar, Union, get_args, get_origin, get_type_hints

import yaml

from pixvox.config.common import ValidationError
from pixvox.errors import UserError
from pixvox.io.atomic import atomic_write_text

T = TypeVar("T")
BASE_KEY = "_base_"
CLI = "command line"


class ConfigError(UserError, ValueError):
    """A config file or override that does not fit the schema."""


def _read_yaml(path: Path) -> dict:
    if not path.is_file():
        raise ConfigError(f"config file not found: {path}")
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as err:
        raise ConfigError(f"{path}: invalid YAML: {err}") from err
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: top level must be a mapping of keys, got {type(data).__name__}")
    return data


def _merge(dst: dict, src: Mapping, origins: dict[str, str], source: str, prefix: str = "") -> None:
    """Deep-merge ``src`` into ``dst``, recording for each leaf key the file it came from."""
    for key, value in src.items():
        if not isinstance(key, str):
            raise ConfigError(f"{source}: keys must be strings, got {key!r} under '{prefix or '<top>'}'")
        dotted = f"{prefix}{key}"
        if isinstance(value, Mapping) and isinstance(dst.get(key), dict):
            _merge(dst[key], value, origins, source, dotted + ".")
        else:
            dst[key] = _plain(value)
            origins[dotted] = source
            if isinstance(value, Mapping):
                for sub in _leaves(value, dotted + "."):
                    origins[sub] = source


def _plain(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    return value


def _leaves(d: Mapping, prefix: str) -> list[str]:
    out = []
    for k, v in d.items():
        out.append(f"{prefix}{k}")
        if isinstance(v, Mapping):
            out.extend(_leaves(v, f"{prefix}{k}."))
    return out


def load_yaml_tree(path: str | Path, _seen: tuple[Path, ...] = ()) -> tuple[dict, dict[str, str]]:
    """Load a YAML file with its ``_base_`` chain; returns the merged dict and key → source file."""
    path = Path(path).resolve()
    if path in _seen:
        chain = " -> ".join(str(p) for p in (*_seen, path))
        raise ConfigError(f"{path}: _base_ cycle: {chain}")
    data = _read_yaml(path)
    bases = data.pop(BASE_KEY, [])
    if isinstance(bases, str):
        bases = [bases]
    if not isinstance(bases, list) or not all(isinstance(b, str) for b in bases):
        raise ConfigError(f"{path}: {BASE_KEY} must be a file name or a list of file names")
    merged: dict = {}
    origins: dict[str, str] = {}
    for base in bases:
        base_path = (path.parent / base).resolve()
        if not base_path.is_file():
            raise ConfigError(f"{path}: {BASE_KEY} file not found: {base} (looked for {base_path})")
        sub, sub_origins = load_yaml_tree(base_path, (*_seen, path))
        _merge(merged, sub, origins, "")
        origins.update(sub_origins)
    _merge(merged, data, origins, str(path))
    return merged, origins


def apply_overrides(data: dict, origins: dict[str, str], overrides: Sequence[str]) -> None:
    """Apply ``a.b.c=value`` strings to ``data`` in place (values parsed as YAML)."""
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"{CLI}: override '{item}' must look like key.subkey=value")
        key, raw = item.split("=", 1)
        key = key.strip()
        if not key or any(not part for part in key.split(".")):
            raise ConfigError(f"{CLI}: override '{item}' has an empty key")
        try:
            value = yaml.safe_load(raw) if raw.strip() else ""
        except yaml.YAMLError as err:
            raise ConfigError(f"{CLI}: cannot parse the value of '{item}': {err}") from err
        node: Any = data
        parts = key.split(".")
        canon = ""  # the key as the schema names it: list items as [i]
        for i, part in enumerate(parts[:-1]):
            if isinstance(node, list):
                j = _list_item(node, part, canon, item)
                canon = f"{canon}[{j}]"
                node = node[j]
                continue
            canon = f"{canon}.{part}" if canon else part
            if part not in node:
                origins[canon] = CLI
            nxt = node.setdefault(part, {})
            if not isinstance(nxt, (dict, list)):
                raise ConfigError(f"{CLI}: '{'.'.join(parts[: i + 1])}' is a value, not a section ({item})")
            node = nxt
        last = parts[-1]
        if isinstance(node, list):
            j = _list_item(node, last, canon, item)
            canon = f"{canon}[{j}]"
            node[j] = value
        else:
            canon = f"{canon}.{last}" if canon else last
            node[last] = value
        origins[canon] = CLI
        if isinstance(value, Mapping):
            for sub in _leaves(value, canon + "."):
                origins[sub] = CLI


def _list_item(items: list, part: str, key: str, item: str) -> int:
    """Index of the list item an override path names: a number, or the ``name`` of a mapping item
    (``loss.terms.ppkt.temperature=0.07``)."""
    if part.lstrip("-").isdigit() and -len(items) <= int(part) < len(items):
        return int(part) % len(items)
    named = [j for j, it in enumerate(items) if isinstance(it, Mapping) and it.get("name") == part]
    if len(named) == 1:
        return named[0]
    names = [it.get("name") for it in items if isinstance(it, Mapping) and "name" in it]
    raise ConfigError(
        f"{CLI}: override '{item}': '{key}' is a list of {len(items)} item(s); '{part}' is neither an index "
        f"nor the name of one of them" + (f" (names: {', '.join(map(str, names))})" if names else "")
    )


def _where(origins: Mapping[str, str], key: str, default: str) -> str:
    while key:
        if key in origins and origins[key]:
            return origins[key]
        # up one level: "a.b[0].c" -> "a.b[0]" -> "a.b" -> "a"
        key = key[: key.rindex("[")] if key.endswith("]") else key.rpartition(".")[0]
    return default


def _type_name(tp: Any) -> str:
    if isinstance(tp, type):
        return tp.__name__
    return str(tp).replace("typing.", "")


def _convert(tp: Any, value: Any, key: str, origins: Mapping[str, str], default_src: str) -> Any:
    src = _where(origins, key, default_src)
    origin = get_origin(tp)
    args = get_args(tp)

    def bad(expected: str | None = None) -> ConfigError:
        return ConfigError(
            f"{src}: key '{key}' expects {expected or _type_name(tp)}, got {value!r} ({type(value).__name__})"
        )

    if tp is Any:
        return value
    if origin is Union or (hasattr(types, "UnionType") and isinstance(tp, types.UnionType)):
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _convert(arg, value, key, origins, default_src)
            except ConfigError as err:
                errors.append(err)
        raise bad(" or ".join(_type_name(a) for a in args))
    if origin is typing.Literal:
        if value not in args:
            raise ConfigError(
                f"{src}: key '{key}' must be one of {', '.join(repr(a) for a in args)}, got {value!r}"
            )
        return value
    variant = getattr(tp, "__config_variant__", None)
    if variant is not None:
        # a section whose schema depends on one of its own keys (a loss term's name)
        if not isinstance(value, Mapping):
            raise bad(f"a section (mapping) for {tp.__name__}")
        try:
            tp = variant(value)
        except ValidationError as err:
            raise ConfigError(f"{src}: key '{key}{err.key}' {err.msg}") from err
        return _build(tp, value, key + ".", origins, default_src)
    if dataclasses.is_dataclass(tp):
        if not isinstance(value, Mapping):
            raise bad(f"a section (mapping) for {tp.__name__}")
        return _build(tp, value, key + ".", origins, default_src)
    if origin in (list, Sequence) or tp is list:
        if not isinstance(value, (list, tuple)):
            raise bad()
        (item_tp,) = args or (Any,)
        return [_convert(item_tp, v, f"{key}[{i}]", origins, default_src) for i, v in enumerate(value)]
    if origin is tuple:
        if not isinstance(value, (list, tuple)):
            raise bad()
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(
                _convert(args[0], v, f"{key}[{i}]", origins, default_src) for i, v in enumerate(value)
            )
        if len(value) != len(args):
            raise bad(f"{len(args)} values")
        return tuple(
            _convert(a, v, f"{key}[{i}]", origins, default_src) for i, (a, v) in enumerate(zip(args, value))
        )
    if origin is dict:
        if not isinstance(value, Mapping):
            raise bad()
        _, v_tp = args or (str, Any)
        return {str(k): _convert(v_tp, v, f"{key}.{k}", origins, default_src) for k, v in value.items()}
    if tp is bool:
        if not isinstance(value, bool):
            raise bad()
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise bad()
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise bad()
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            raise bad()
        return value
    raise ConfigError(f"{src}: key '{key}' has an unsupported schema type {_type_name(tp)}")


def _build(cls: type[T], data: Mapping, prefix: str, origins: Mapping[str, str], default_src: str) -> T:
    hints = get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    for key in data:
        if key not in fields:
            src = _where(origins, prefix + key, default_src)
            valid = ", ".join(sorted(fields))
            raise ConfigError(
                f"{src}: unknown key '{prefix}{key}' (valid keys under '{prefix[:-1] or '<top>'}': {valid})"
            )
    kwargs = {name: _convert(hints[name], data[name], prefix + name, origins, default_src) for name in data}
    try:
        return cls(**kwargs)
    except ValidationError as err:
        # The key named by the check may be a sibling section's; report where the value came from.
        # A key starting with "." is relative to this section (a list item's checks).
        if err.key.startswith("."):
            key = prefix[:-1] + err.key
            raise ConfigError(f"{_where(origins, key, default_src)}: key '{key}' {err.msg}") from err
        raise ConfigError(f"{_where(origins, err.key.split('/')[0], default_src)}: {err}") from err
    except TypeError as err:  # a required field without default
        raise ConfigError(f"{default_src}: section '{prefix[:-1] or '<top>'}': {err}") from err


def from_dict(
    cls: type[T], data: Mapping, origins: Mapping[str, str] | None = None, source: str = "<dict>"
) -> T:
    """Build the dataclass ``cls`` from a nested dict, checking every key and type."""
    return _build(cls, data, "", origins or {}, source)


def load_config(cls: type[T], path: str | Path | None = None, overrides: Sequence[str] = ()) -> T:
    """Load ``path`` (with its ``_base_`` chain) and ``overrides`` into the dataclass ``cls``.

    Without a path, the schema's defaults plus the overrides are used.
    """
    return load_config_with_origins(cls, path, overrides)[0]


def load_config_with_origins(
    cls: type[T], path: str | Path | None = None, overrides: Sequence[str] = ()
) -> tuple[T, dict[str, str]]:
    """:func:`load_config`, plus where each key set by a file or the command line came from
    (dotted key → resolved file path or ``"command line"``; keys absent there are defaults)."""
    if path is None:
        data, origins, source = {}, {}, "<defaults>"
    else:
        data, origins = load_yaml_tree(path)
        source = str(Path(path).resolve())
    apply_overrides(data, origins, overrides)
    return from_dict(cls, data, origins, source), origins


def to_dict(cfg: Any) -> dict:
    """A dataclass config as plain YAML-able dicts/lists."""

    def plain(v: Any) -> Any:
        if dataclasses.is_dataclass(v):
            return {f.name: plain(getattr(v, f.name)) for f in dataclasses.fields(v)}
        if isinstance(v, (list, tuple)):
            return [plain(x) for x in v]
        if isinstance(v, dict):
            return {k: plain(x) for k, x in v.items()}
        return v

    return plain(cfg)


def save_config(cfg: Any, path: str | Path) -> Path:
    """Write the resolved config as YAML (atomically) so a run can be reproduced from it alone."""
    path = Path(path)
    atomic_write_text(path, yaml.safe_dump(to_dict(cfg), sort_keys=False))
    return path
