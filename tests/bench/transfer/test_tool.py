"""tools/transfer_bench.py: every option reaches the benchmark; a room in both splits stops it early."""

from __future__ import annotations

import dataclasses
import importlib.util
import subprocess
import sys
from pathlib import Path

from pixvox.bench.transfer.bench import BenchOptions

TOOL = Path(__file__).resolve().parents[3] / "tools" / "transfer_bench.py"


def _tool():
    spec = importlib.util.spec_from_file_location("transfer_bench_tool", TOOL)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_every_option_reaches_the_bench_options():
    tool = _tool()
    a = tool.parse_args(
        ["--quick", "--steps", "50", "--seeds", "4", "5", "--set", "a.b=1", "--probe-rows", "7"]
        + ["--finetune-budgets", "--ablation", "x", "--arms", "ppkt", "--out-dir", "o"]
    )
    opts = tool.options(a)
    assert (opts.steps, opts.seeds, opts.overrides, opts.probe_rows) == (50, [4, 5], ["a.b=1"], 7)
    assert (opts.finetune_budgets, opts.arms, opts.out_dir, opts.quick) == ([], ["ppkt"], "o", True)
    # every parsed option is a BenchOptions field or one the tool keeps for itself
    fields = {f.name for f in dataclasses.fields(BenchOptions)}
    assert set(vars(a)) <= fields | set(tool.TOOL_ONLY)


def test_finetune_set_overrides_the_recipe_for_both_inits(tmp_path):
    from pixvox.bench.transfer.arms import FINETUNE_RECIPE
    from pixvox.bench.transfer.finetune import finetune_config

    tool = _tool()
    opts = tool.options(tool.parse_args(["--finetune-set", "optim.lr=0.02", "optim.backbone_lr_factor=0.1"]))
    assert opts.finetune_overrides == ["optim.lr=0.02", "optim.backbone_lr_factor=0.1"]
    recipe = TOOL.parents[1] / FINETUNE_RECIPE
    for init, ckpt in (("scratch", None), ("pretrained", tmp_path / "run")):
        args = (recipe, init, 20, 3, 100, tmp_path, ["a"], ["b"], ckpt)
        plain, changed = finetune_config(*args), finetune_config(*args, 4, opts.finetune_overrides)
        assert (plain.optim.lr, plain.optim.backbone_lr_factor) == (0.002, 1.0)  # the recipe's values
        assert (changed.optim.lr, changed.optim.backbone_lr_factor) == (0.02, 0.1)
        assert (changed.data.subset.points_per_scene, changed.init.mode) == (20, init)


def test_a_room_in_train_and_test_exits_2_naming_it(tmp_path):
    room = "../shared/data/scannet_pointcept/scene0025_00"
    r = subprocess.run(
        [sys.executable, str(TOOL), "--train-rooms", room, "--test-rooms", room, "--out-dir", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode == 2, r.stderr
    assert "scene0025_00 in both --train-rooms and --test-rooms" in r.stderr


def test_an_ablation_of_both_pretraining_and_fine_tuning_exits_2(tmp_path, capsys):
    argv = ["--ablation", "x", "--set", "a.b=1", "--finetune-set", "optim.lr=0.1", "--out-dir", str(tmp_path)]
    assert _tool().main(argv) == 2
    assert "one change" in capsys.readouterr().err
    assert not any(tmp_path.iterdir())  # stopped before any run
