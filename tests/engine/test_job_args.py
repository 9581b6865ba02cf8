"""The shared job command line: config file, overrides, --resume."""

from __future__ import annotations

from pixvox.engine.job_args import parse_job_args

DEFAULT = "configs/pretrain/quickstart.yaml"


def test_config_then_overrides():
    a = parse_job_args("t", DEFAULT, ["configs/x.yaml", "train.max_steps=5", "loss.temperature=0.07"])
    assert (a.config, a.overrides, a.resume) == (
        "configs/x.yaml",
        ["train.max_steps=5", "loss.temperature=0.07"],
        "auto",
    )


def test_overrides_only_mean_the_default_config():
    a = parse_job_args("t", DEFAULT, ["train.max_steps=5", "experiment.name=x", "--resume", "none"])
    assert (a.config, a.overrides, a.resume) == (DEFAULT, ["train.max_steps=5", "experiment.name=x"], "none")


def test_no_arguments_give_the_default(tmp_path):
    a = parse_job_args("t", DEFAULT, [])
    assert (a.config, a.overrides, a.resume) == (DEFAULT, [], "auto")


def test_an_existing_file_with_equals_in_its_name_stays_the_config(tmp_path):
    odd = tmp_path / "lr=0.1"
    odd.write_text("{}\n")
    a = parse_job_args("t", DEFAULT, [str(odd), "a.b=1"])
    assert (a.config, a.overrides) == (str(odd), ["a.b=1"])
    named = "runs/lr=0.1.yaml"  # not existing yet: the .yaml ending still marks it as a config
    assert parse_job_args("t", DEFAULT, [named]).config == named


def test_options_may_stand_anywhere_among_config_and_overrides():
    a = parse_job_args("t", DEFAULT, ["--prepare-data", "configs/x.yaml", "a.b=1"])
    assert (a.config, a.overrides, a.prepare_data) == ("configs/x.yaml", ["a.b=1"], True)
    a = parse_job_args("t", DEFAULT, ["configs/x.yaml", "--resume", "force", "a.b=1", "c.d=2"])
    assert (a.config, a.overrides, a.resume, a.prepare_data) == (
        "configs/x.yaml",
        ["a.b=1", "c.d=2"],
        "force",
        False,
    )
