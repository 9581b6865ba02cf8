"""Arm files and the run cache key."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
import yaml

from pixvox.bench.transfer.arms import (
    arm_config,
    arm_names,
    config_hash,
    default_arm_names,
    finished,
    load_arm,
)
from pixvox.config import ConfigError, PretrainConfig, load_config, to_dict

REPO_ARMS = Path(__file__).resolve().parents[3] / "configs" / "transfer"
REPO_PRETRAIN = REPO_ARMS.parent / "pretrain"


def test_default_arms_leave_out_only_the_opt_in_ones(tmp_path):
    # the shipped set: issue 11's arms and every objective run by default; ppkt_f5 only on request
    default = default_arm_names(REPO_ARMS)
    assert set(arm_names(REPO_ARMS)) - set(default) == {"ppkt_f5"}
    assert {"random", "ppkt", "random_teacher", "no_color", "pointcontrast", "masked_2d"} <= set(default)
    # a fresh folder: an arm with default: false is listed but not run by default; a bad value fails
    (tmp_path / "base.yaml").write_text((REPO_ARMS / "base.yaml").read_text())
    (tmp_path / "a.yaml").write_text("_base_: base.yaml\n")
    (tmp_path / "b.yaml").write_text("_base_: base.yaml\ntransfer:\n  default: false\n")
    assert arm_names(tmp_path) == ["a", "b"] and default_arm_names(tmp_path) == ["a"]
    (tmp_path / "b.yaml").write_text("_base_: base.yaml\ntransfer:\n  defualt: false\n")
    with pytest.raises(ConfigError, match=r"b\.yaml.*defualt"):
        default_arm_names(tmp_path)


def test_every_shipped_arm_resolves_and_differs_from_ppkt_only_where_it_says():
    names = arm_names(REPO_ARMS)
    assert {"random", "ppkt", "random_teacher", "no_color", "pointcontrast"} <= set(names)
    ppkt = arm_config(load_arm("ppkt", REPO_ARMS), 0, [])
    assert not load_arm("random", REPO_ARMS).options.pretrain
    assert load_arm("ppkt", REPO_ARMS).options.pretrain
    assert arm_config(load_arm("random_teacher", REPO_ARMS), 0, []).teacher.weights == "none"
    assert arm_config(load_arm("no_color", REPO_ARMS), 0, []).student.input == "ones"
    pc = arm_config(load_arm("pointcontrast", REPO_ARMS), 0, [])
    assert [t.name for t in pc.loss.terms] == ["pointcontrast"]
    # issue 12's objectives, with the options of their configs/pretrain/*_scannet0378.yaml
    f5 = arm_config(load_arm("ppkt_f5", REPO_ARMS), 0, [])
    assert (f5.data.frames_per_sample, f5.data.frame_stride, f5.loss.terms) == (5, 5, ppkt.loss.terms)
    for arm, terms in (("masked_2d", ["masked_2d"]), ("ppkt_masked_2d", ["ppkt", "masked_2d"])):
        cfg = arm_config(load_arm(arm, REPO_ARMS), 0, [])
        assert [t.name for t in cfg.loss.terms] == terms
        pretrain = load_config(PretrainConfig, str(REPO_PRETRAIN / f"{arm}_scannet0378.yaml"))
        assert cfg.loss.terms == pretrain.loss.terms
        assert (cfg.teacher, cfg.optim, cfg.schedule) == (ppkt.teacher, ppkt.optim, ppkt.schedule)
    for name in names:  # same student, budget and data for every arm
        cfg = arm_config(load_arm(name, REPO_ARMS), 3, ["train.max_steps=7"])
        assert (cfg.student.name, cfg.train.max_steps, cfg.data.voxel_size, cfg.experiment.seed) == (
            ppkt.student.name,
            7,
            ppkt.data.voxel_size,
            3,
        )


def test_hash_changes_with_the_config_but_not_with_the_run_name():
    arm = load_arm("ppkt", REPO_ARMS)
    a, b = arm_config(arm, 0, []), arm_config(arm, 0, [])
    b.experiment.name = "elsewhere"
    assert config_hash(a) == config_hash(b)
    assert config_hash(a) != config_hash(arm_config(arm, 1, []))
    assert config_hash(a) != config_hash(arm_config(arm, 0, ["loss.terms.ppkt.temperature=0.1"]))


def test_unknown_transfer_key_and_unknown_arm_are_errors(tmp_path):
    (tmp_path / "base.yaml").write_text((REPO_ARMS / "base.yaml").read_text())
    (tmp_path / "odd.yaml").write_text("_base_: base.yaml\ntransfer:\n  pretrian: false\n")
    with pytest.raises(ConfigError, match="pretrian"):
        load_arm("odd", tmp_path)
    with pytest.raises(ConfigError, match="nope"):
        load_arm("nope", tmp_path)


def test_a_key_added_later_at_its_default_keeps_the_runs_cached_before_it(tmp_path):
    """A run made before ``teacher.linear_stage`` existed (its config.yaml lacks the key) keeps its
    hash and is reused at the default; another value is another run."""
    arm = load_arm("ppkt", REPO_ARMS)
    cfg = arm_config(arm, 0, ["teacher.head=linear"])
    before = to_dict(cfg)
    del before["teacher"]["linear_stage"]
    old = dict(
        before, experiment={k: v for k, v in before["experiment"].items() if k not in ("name", "output_root")}
    )
    old_hash = hashlib.sha256(yaml.safe_dump(old, sort_keys=True).encode()).hexdigest()[:12]
    assert config_hash(cfg) == old_hash
    run = tmp_path / "run"
    run.mkdir()
    (run / "config.yaml").write_text(yaml.safe_dump(before))
    (run / "summary.json").write_text(json.dumps({"final_loss": 1.0}))
    assert finished(run, cfg) == {"final_loss": 1.0}
    other = arm_config(arm, 0, ["teacher.head=linear", "teacher.linear_stage=2"])
    assert other.teacher.linear_stage == 2
    assert config_hash(other) != old_hash
    assert finished(run, other) is None


def test_fine_tuning_runs_made_before_backbone_lr_factor_and_head_keep_their_hash(tmp_path):
    """As above for ``optim.backbone_lr_factor`` (default 1), ``init.head`` (new) and ``init.probe_l2``
    in the fine-tuning configs."""
    from pixvox.bench.transfer.arms import FINETUNE_RECIPE
    from pixvox.bench.transfer.finetune import finetune_config

    args = (REPO_ARMS.parents[1] / FINETUNE_RECIPE, "scratch", 20, 0, 100, tmp_path, ["a"], ["b"], None)
    cfg = finetune_config(*args)
    before = to_dict(cfg)
    del before["optim"]["backbone_lr_factor"], before["init"]["head"], before["init"]["probe_l2"]
    del before["init"]["keep_bn_stats"]
    old = dict(
        before, experiment={k: v for k, v in before["experiment"].items() if k not in ("name", "output_root")}
    )
    assert config_hash(cfg) == hashlib.sha256(yaml.safe_dump(old, sort_keys=True).encode()).hexdigest()[:12]
    run = tmp_path / "run"
    run.mkdir()
    (run / "config.yaml").write_text(yaml.safe_dump(before))
    (run / "summary.json").write_text(json.dumps({"miou": 0.1}))
    assert finished(run, cfg) == {"miou": 0.1}
    assert finished(run, finetune_config(*args, 4, ["optim.backbone_lr_factor=0.1"])) is None
    assert finished(run, finetune_config(*args, 4, ["init.head=probe"])) is None
