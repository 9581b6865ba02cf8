"""``loss.terms``: validated like every config section; the shorthand of older configs still loads."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from pixvox.config import ConfigError, PretrainConfig, load_config, save_config, to_dict
from pixvox.config.objectives import OBJECTIVES, PointContrastTerm, PPKTTerm

REPO = Path(__file__).resolve().parents[2]


def _load(*overrides: str, path: str | Path | None = None) -> PretrainConfig:
    return load_config(PretrainConfig, path, list(overrides))


def test_terms_are_typed_per_objective_and_weighted():
    cfg = _load("loss.terms=[{name: ppkt, weight: 2, temperature: 0.1}, {name: pointcontrast, weight: 0.5}]")
    ppkt, pc = cfg.loss.terms
    assert isinstance(ppkt, PPKTTerm) and isinstance(pc, PointContrastTerm)
    assert (ppkt.weight, ppkt.temperature, ppkt.num_pairs) == (2.0, 0.1, PPKTTerm.num_pairs)
    assert (pc.weight, pc.temperature) == (0.5, PointContrastTerm.temperature)


@pytest.mark.parametrize(
    "terms, key, hint",
    [
        ("[{name: ppkt, temprature: 0.1}]", "loss.terms[0].temprature", "valid keys under 'loss.terms[0]'"),
        ("[{name: ppkt}, {name: masked}]", "loss.terms[1].name", "'ppkt', 'pointcontrast'"),
        ("[{weight: 1}]", "loss.terms[0].name", "must be one of"),
        ("[{name: pointcontrast, temperature: hot}]", "loss.terms[0].temperature", "expects float"),
        ("[{name: ppkt, temperature: 0}]", "loss.terms[0].temperature", "must be > 0"),
        ("[{name: ppkt, weight: -1}]", "loss.terms[0].weight", "must be > 0"),
        ("[{name: ppkt, pixel_level: 1}]", "loss.terms[0].pixel_level", "expects bool"),
        ("[{name: ppkt}, {name: ppkt}]", "loss.terms", "more than once"),
        ("[ppkt]", "loss.terms[0]", "a section"),
    ],
)
def test_a_bad_term_is_a_config_error_naming_the_key(terms, key, hint):
    with pytest.raises(ConfigError) as err:
        _load(f"loss.terms={terms}")
    assert f"'{key}'" in str(err.value) and hint in str(err.value), str(err.value)


def test_a_bad_term_in_a_file_names_the_file(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("loss:\n  terms:\n    - {name: ppkt}\n    - {name: pointcontrast, pairs: 5}\n")
    with pytest.raises(ConfigError, match=r"bad\.yaml: unknown key 'loss\.terms\[1\]\.pairs'"):
        _load(path=path)


def test_overrides_reach_a_term_by_name_or_index():
    base = "loss.terms=[{name: ppkt}, {name: pointcontrast}]"
    cfg = _load(base, "loss.terms.pointcontrast.temperature=0.2", "loss.terms.0.weight=3")
    assert cfg.loss.terms[1].temperature == 0.2 and cfg.loss.terms[0].weight == 3.0
    with pytest.raises(ConfigError, match="names: ppkt, pointcontrast"):
        _load(base, "loss.terms.masked.weight=1")


def test_shorthand_of_older_configs_maps_onto_terms(tmp_path):
    cfg = _load("loss.name=ppkt+pointcontrast", "loss.temperature=0.05", "loss.pointcontrast_weight=0.5")
    assert [(t.name, t.weight) for t in cfg.loss.terms] == [("ppkt", 1.0), ("pointcontrast", 0.5)]
    assert cfg.loss.terms[0].temperature == 0.05 and cfg.loss.name is None and cfg.loss.temperature is None
    assert [t.name for t in _load().loss.terms] == ["ppkt"]  # the default
    # the saved config is canonical (terms only) and loads back to the same config
    saved = save_config(cfg, tmp_path / "c.yaml")
    assert to_dict(_load(path=saved)) == to_dict(cfg)
    # a shorthand key still works on top of a file's terms ...
    cfg = _load("loss.temperature=0.1", path=REPO / "configs/pretrain/quickstart.yaml")
    assert cfg.loss.terms[0].temperature == 0.1
    # ... but not for an objective the terms lack, and never together with loss.name
    with pytest.raises(ConfigError, match="'loss.pointcontrast_pairs' sets the pointcontrast term"):
        _load("loss.pointcontrast_pairs=8", path=REPO / "configs/pretrain/quickstart.yaml")
    with pytest.raises(ConfigError, match="'loss.name' is shorthand for loss.terms"):
        _load("loss.name=pointcontrast", path=REPO / "configs/pretrain/quickstart.yaml")
    with pytest.raises(ConfigError, match=r"'loss.name' names unknown objective 'ppk'"):
        _load("loss.name=ppk")


def test_every_shipped_pretraining_config_uses_terms():
    for path in sorted((REPO / "configs/pretrain").glob("*.yaml")):
        loss = yaml.safe_load(path.read_text()).get("loss", {})
        assert "name" not in loss, path
        cfg = _load(path=path)
        assert cfg.loss.terms and all(t.name in OBJECTIVES for t in cfg.loss.terms)
