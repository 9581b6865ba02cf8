"""The teacher section: ``linear_stage`` only with the linear head."""

from __future__ import annotations

import pytest

from pixvox.config import ConfigError, PretrainConfig, load_config


def test_linear_stage_defaults_to_the_deepest_and_needs_the_linear_head():
    assert load_config(PretrainConfig, None, []).teacher.linear_stage == -1
    cfg = load_config(PretrainConfig, None, ["teacher.head=linear", "teacher.linear_stage=2"])
    assert (cfg.teacher.head, cfg.teacher.linear_stage) == ("linear", 2)
    with pytest.raises(ConfigError, match="teacher.linear_stage.*set teacher.head=linear"):
        load_config(PretrainConfig, None, ["teacher.linear_stage=2"])
