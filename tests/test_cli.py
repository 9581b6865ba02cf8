"""The `pixvox` command: verbs and help without torch, user errors as one line with status 2, crashes
with their traceback, `pixvox config` with the origin of every value, the prep and selftest verbs."""

from __future__ import annotations

import importlib.metadata
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from pixvox import cli
from pixvox.config import FinetuneConfig, PretrainConfig, from_dict, load_config
from pixvox.errors import EXIT_USER_ERROR, UserError

REPO = Path(__file__).resolve().parents[1]
QUICKSTART = "configs/pretrain/quickstart.yaml"


def _python(code: str, *, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, env=env, timeout=120
    )


def _pixvox(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "pixvox", *args],
        capture_output=True,
        text=True,
        cwd=REPO,
        env=env,
        timeout=300,
    )


@pytest.mark.parametrize(
    "argv",
    [
        ["--help"],
        ["pretrain", "--help"],
        ["finetune", "--help"],
        ["config", QUICKSTART, "train.max_steps=3"],
        ["config", "--help"],
        ["pretrain", QUICKSTART, "train.max_stepz=3"],  # a config error is reported before torch loads
    ],
)
def test_help_parsing_and_config_loading_do_not_import_torch(argv):
    code = (
        "import sys\nfrom pixvox.cli import main\n"
        f"try:\n    rc = main({argv!r})\nexcept SystemExit as e:\n    rc = e.code\n"
        "print('RC', rc, 'TORCH', 'torch' in sys.modules)\n"
    )
    out = _python(code)
    assert out.returncode == 0, out.stderr
    last = out.stdout.strip().splitlines()[-1]
    assert last.endswith("TORCH False"), out.stdout + out.stderr
    assert last.startswith("RC 0") or (argv[-1].endswith("stepz=3") and last.startswith("RC 2"))


def test_top_level_help_lists_every_verb():
    out = _pixvox("--help")
    assert out.returncode == 0
    for verb in ("pretrain", "finetune", "prep", "config", "selftest"):
        assert f"  {verb}" in out.stdout


def test_the_console_script_is_installed():
    (ep,) = importlib.metadata.entry_points(group="console_scripts", name="pixvox")
    assert ep.value == "pixvox.cli:console_main", "reinstall: bash tools/setup_env.sh"
    script = shutil.which("pixvox", path=str(Path(sys.executable).parent))
    assert script, f"no pixvox script beside {sys.executable}; rerun bash tools/setup_env.sh"
    out = subprocess.run([script, "--help"], capture_output=True, text=True, cwd=REPO, timeout=60)
    assert out.returncode == 0 and "selftest" in out.stdout


# ---------------------------------------------------------------------- errors
def test_a_user_error_is_one_line_and_status_2_in_a_real_process():
    out = _pixvox("pretrain", QUICKSTART, "train.max_stepz=10")
    assert out.returncode == EXIT_USER_ERROR
    assert "Traceback" not in out.stderr
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1, out.stderr
    assert lines[0].startswith("pixvox pretrain: error: ") and "unknown key 'train.max_stepz'" in lines[0]


@pytest.mark.parametrize("how", ["flag", "env"])
def test_debug_shows_the_traceback_of_a_user_error(how):
    env = dict(os.environ)
    args = ["pretrain", QUICKSTART, "train.max_stepz=10"]
    if how == "flag":
        args.append("--debug")
    else:
        env["PIXVOX_DEBUG"] = "1"
    out = _pixvox(*args, env=env)
    assert out.returncode == EXIT_USER_ERROR
    assert "Traceback (most recent call last)" in out.stderr and "ConfigError" in out.stderr


def test_a_crash_keeps_its_traceback():
    code = "from pixvox.cli import run_verb\nrun_verb('x', lambda args: 1 / 0, [], False)\n"
    out = _python(code)
    assert out.returncode == 1
    assert "Traceback (most recent call last)" in out.stderr and "ZeroDivisionError" in out.stderr


def test_run_verb_maps_user_errors_only(capsys):
    def user(args):
        raise UserError("config.yaml: something the user can fix")

    assert cli.run_verb("pretrain", user, [], debug=False) == EXIT_USER_ERROR
    err = capsys.readouterr().err
    assert err.startswith("pixvox pretrain: error: config.yaml: something the user can fix")
    assert "Traceback" not in err
    assert cli.run_verb("pretrain", user, [], debug=True) == EXIT_USER_ERROR
    assert "Traceback (most recent call last)" in capsys.readouterr().err
    with pytest.raises(KeyError):
        cli.run_verb("pretrain", lambda args: {}["missing"], [], debug=False)
    assert cli.run_verb("pretrain", lambda args: None, [], debug=False) == 0


def test_a_user_error_from_a_dataloader_worker_loses_the_worker_traceback():
    import torch

    from pixvox.io.fusions import FusionFormatError

    class Bad(torch.utils.data.Dataset):
        def __len__(self):
            return 2

        def __getitem__(self, i):
            raise FusionFormatError("samples/a.npz: truncated file")

    loader = torch.utils.data.DataLoader(Bad(), batch_size=1, num_workers=1)
    with pytest.raises(FusionFormatError) as info:
        next(iter(loader))
    assert "Original Traceback" in str(info.value)  # what torch hands back
    assert cli.user_error_message(info.value) == "samples/a.npz: truncated file"


def test_asking_for_a_gpu_where_there_is_none_is_a_user_error(capsys, tmp_path):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    argv = ["pretrain", QUICKSTART, "train.device=cuda", f"experiment.output_root={tmp_path}"]
    assert cli.main(argv) == EXIT_USER_ERROR
    err = capsys.readouterr().err
    assert "train.device=cuda but torch sees no CUDA device" in err and "Traceback" not in err


# ---------------------------------------------------------------------- config
def _origins(text: str) -> dict[str, str]:
    """Dotted key → origin comment of `pixvox config` output."""
    out, stack = {}, []
    for line in text.splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        depth = (len(line) - len(line.lstrip())) // 2
        key = line.strip().split(":", 1)[0]
        del stack[depth:]
        if "#" in line:
            out[".".join([*stack, key])] = line.rsplit("# ", 1)[1]
        else:
            stack.append(key)
    return out


def test_config_prints_values_with_their_origin_and_loads_back(capsys, tmp_path):
    base = tmp_path / "base.yaml"
    base.write_text("loss:\n  temperature: 0.2\ntrain:\n  batch_size: 6\n")
    child = tmp_path / "child.yaml"
    child.write_text("_base_: base.yaml\nexperiment:\n  name: child\ntrain:\n  batch_size: 2\n")
    assert cli.main(["config", str(child), "train.max_steps=7", "data.image_size=[12, 16]"]) == 0
    text = capsys.readouterr().out
    origin = _origins(text)
    assert origin["experiment.name"] == "file"
    assert origin["loss.temperature"] in (f"_base_ {base}", f"_base_ {os.path.relpath(base)}")
    assert origin["train.batch_size"] == "file"  # the child overrides its base
    assert origin["train.max_steps"] == "command line"
    assert origin["data.image_size"] == "command line"
    assert origin["train.sync_bn"] == origin["schedule.name"] == "default"
    expected = load_config(PretrainConfig, child, ["train.max_steps=7", "data.image_size=[12, 16]"])
    assert from_dict(PretrainConfig, yaml.safe_load(text)) == expected


def test_config_reads_a_finetune_file_with_the_finetune_schema(capsys):
    assert cli.main(["config", "configs/finetune/synthetic.yaml"]) == 0
    text = capsys.readouterr().out
    assert "read as a finetune config" in text.splitlines()[0]
    assert from_dict(FinetuneConfig, yaml.safe_load(text)) == load_config(
        FinetuneConfig, "configs/finetune/synthetic.yaml"
    )


def test_config_errors_are_user_errors(capsys, tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("train: [unclosed\n")
    assert cli.main(["config", str(bad)]) == EXIT_USER_ERROR
    err = capsys.readouterr().err
    assert "invalid YAML" in err and str(bad) in err and "Traceback" not in err
    assert cli.main(["config", QUICKSTART, "nope.key=1"]) == EXIT_USER_ERROR
    assert "unknown key 'nope'" in capsys.readouterr().err


# ---------------------------------------------------------------------- prep, selftest
def _status(argv: list[str]) -> int:
    try:
        return cli.main(argv)
    except SystemExit as e:  # argparse's --help
        return int(e.code or 0)


def test_prep_lists_datasets_and_rejects_an_unknown_one(capsys):
    assert _status(["prep", "--help"]) == 0
    assert "synthetic" in capsys.readouterr().out
    assert cli.main(["prep", "no_such_dataset"]) == EXIT_USER_ERROR
    assert "no_such_dataset" in capsys.readouterr().err


def test_prep_runs_a_preparer(tmp_path, capsys):
    out = tmp_path / "synth"
    args = [
        "--out",
        str(out),
        "--scenes",
        "1",
        "--frames",
        "2",
        "--image-size",
        "24x32",
        "--points-per-m2",
        "50",
    ]
    rc = cli.main(["prep", "synthetic", *args])
    assert rc == 0
    assert (out / "frames").is_dir() and (out / "clouds" / "index.json").is_file()


def test_selftest_says_clearly_when_it_is_missing(monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "pixvox.selftest", None)  # as if the module did not exist
    assert cli.main(["selftest"]) == EXIT_USER_ERROR
    assert "no module pixvox.selftest" in capsys.readouterr().err
