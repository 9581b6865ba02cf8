"""Typed config loading: _base_ inheritance, overrides, and errors that name the key and the file."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, Optional

import pytest
import yaml

from pixvox.config import ConfigError, PretrainConfig, load_config, save_config, to_dict
from pixvox.config.common import check

REPO = Path(__file__).resolve().parents[2]


@dataclass
class Inner:
    rate: float = 0.1
    steps: int = 3
    mode: Literal["a", "b"] = "a"
    size: Optional[tuple[int, int]] = None
    tags: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        check(self.rate > 0, "inner.rate", "must be > 0")


@dataclass
class Outer:
    name: str = "x"
    flag: bool = False
    inner: Inner = field(default_factory=Inner)


def write(path: Path, data: dict) -> Path:
    path.write_text(yaml.safe_dump(data))
    return path


def test_defaults_and_base_chain_and_overrides(tmp_path):
    write(tmp_path / "base.yaml", {"name": "base", "inner": {"rate": 0.5, "steps": 7}})
    write(tmp_path / "mid.yaml", {"_base_": "base.yaml", "inner": {"steps": 9, "tags": ["p"]}})
    child = write(tmp_path / "child.yaml", {"_base_": ["mid.yaml"], "flag": True})
    cfg = load_config(Outer, child, ["inner.mode=b", "inner.size=[4, 5]", "name=cli"])
    assert cfg == Outer(
        name="cli", flag=True, inner=Inner(rate=0.5, steps=9, mode="b", size=(4, 5), tags=["p"])
    )
    assert load_config(Outer) == Outer()


def test_int_is_accepted_for_float_but_not_the_reverse(tmp_path):
    assert load_config(Outer, None, ["inner.rate=2"]).inner.rate == 2.0
    with pytest.raises(ConfigError, match=r"'inner.steps' expects int, got 2.5"):
        load_config(Outer, None, ["inner.steps=2.5"])


@pytest.mark.parametrize(
    "data,pattern",
    [
        ({"inner": {"ratee": 1.0}}, r"unknown key 'inner.ratee'.*valid keys under 'inner': mode, rate"),
        ({"nam": "y"}, r"unknown key 'nam'"),
        ({"flag": "yes"}, r"'flag' expects bool, got 'yes'"),
        ({"inner": {"mode": "c"}}, r"'inner.mode' must be one of 'a', 'b', got 'c'"),
        ({"inner": {"size": [1, 2, 3]}}, r"'inner.size' expects"),
        ({"inner": 3}, r"'inner' expects a section"),
        ({"inner": {"rate": -1.0}}, r"'inner.rate' must be > 0"),
    ],
)
def test_errors_name_key_and_file(tmp_path, data, pattern):
    write(tmp_path / "base.yaml", {"name": "ok"})
    bad = write(tmp_path / "bad.yaml", {"_base_": "base.yaml", **data})
    with pytest.raises(ConfigError, match=pattern) as info:
        load_config(Outer, bad)
    assert str(bad) in str(info.value)


def test_error_in_base_file_names_the_base_file(tmp_path):
    base = write(tmp_path / "base.yaml", {"inner": {"stepz": 1}})
    child = write(tmp_path / "child.yaml", {"_base_": "base.yaml", "name": "c"})
    with pytest.raises(ConfigError, match="unknown key 'inner.stepz'") as info:
        load_config(Outer, child)
    assert str(base) in str(info.value) and str(child) not in str(info.value)


def test_override_errors_name_the_command_line():
    with pytest.raises(ConfigError, match=r"command line: unknown key 'inner.nope'"):
        load_config(Outer, None, ["inner.nope=1"])
    with pytest.raises(ConfigError, match="must look like"):
        load_config(Outer, None, ["inner.rate"])
    with pytest.raises(ConfigError, match=r"command line: key 'name' expects str"):
        load_config(Outer, None, ["name.sub=1"])
    with pytest.raises(ConfigError, match="is a value, not a section"):
        load_config(Outer, None, ["name=a", "name.sub=1"])


def test_missing_files_and_cycles(tmp_path):
    with pytest.raises(ConfigError, match="config file not found"):
        load_config(Outer, tmp_path / "nope.yaml")
    child = write(tmp_path / "child.yaml", {"_base_": "gone.yaml"})
    with pytest.raises(ConfigError, match=r"_base_ file not found: gone.yaml"):
        load_config(Outer, child)
    write(tmp_path / "a.yaml", {"_base_": "b.yaml"})
    write(tmp_path / "b.yaml", {"_base_": "a.yaml"})
    with pytest.raises(ConfigError, match="cycle"):
        load_config(Outer, tmp_path / "a.yaml")
    (tmp_path / "broken.yaml").write_text("a: [1, 2\n")
    with pytest.raises(ConfigError, match="invalid YAML"):
        load_config(Outer, tmp_path / "broken.yaml")


def test_saved_config_round_trips(tmp_path):
    cfg = load_config(Outer, None, ["inner.size=[2, 3]", "inner.tags=[u, v]", "flag=true"])
    path = save_config(cfg, tmp_path / "run" / "config.yaml")
    assert load_config(Outer, path) == cfg
    assert not list((tmp_path / "run").glob(".*tmp"))  # no temporary file left behind


@pytest.mark.parametrize("path", sorted((REPO / "configs").rglob("*.yaml")), ids=lambda p: p.name)
def test_shipped_configs_load(path):
    if path.name.startswith("_"):
        pytest.skip("fragment meant for _base_ only")
    schema = PretrainConfig
    if "transfer" in path.parts:  # an arm of the transfer benchmark: a pretraining config + 'transfer:'
        from pixvox.bench.transfer.arms import arm_config, load_arm

        assert to_dict(arm_config(load_arm(path.stem, path.parent), 0, []))
        return
    if "finetune" in path.parts:
        from pixvox.config import FinetuneConfig  # type: ignore[attr-defined]

        schema = FinetuneConfig
    cfg = load_config(schema, path)
    assert to_dict(cfg)  # and it serializes
