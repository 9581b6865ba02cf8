"""Pretraining through `pixvox pretrain`: every user-error class exits with status 2 and one message
(no traceback), and resuming compares the config and the teacher weight file (issue 14 item 3)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch

from pixvox import cli
from pixvox.engine.checkpoint import latest_checkpoint, load_checkpoint
from pixvox.engine.logger import read_metrics
from pixvox.errors import EXIT_USER_ERROR

from .conftest import REPO, tiny_overrides

CONFIG = str(REPO / "configs/pretrain/quickstart.yaml")


def user_error(capsys, argv: list[str]) -> str:
    """Run ``pixvox pretrain argv``; assert status 2, one ``pixvox pretrain: error:`` message and no
    traceback; return the message."""
    code = cli.main(["pretrain", *argv])
    err = capsys.readouterr().err
    assert code == EXIT_USER_ERROR, err
    assert "Traceback" not in err and "Original Traceback" not in err
    lines = [ln for ln in err.splitlines() if ln.startswith("pixvox pretrain: error: ")]
    assert len(lines) == 1, err
    return err


def test_missing_data(capsys, tmp_path):
    args = tiny_overrides(tmp_path / "no_data", tmp_path, "missing")
    err = user_error(capsys, [CONFIG, *args, "--resume", "none"])
    assert str(tmp_path / "no_data" / "index.json") in err and "not found" in err


def test_a_malformed_fusion_index(capsys, tmp_path):
    root = tmp_path / "fusions"
    root.mkdir()
    (root / "index.json").write_text("{ not json")
    err = user_error(capsys, [CONFIG, *tiny_overrides(root, tmp_path, "bad_index"), "--resume", "none"])
    assert str(root / "index.json") in err and "not valid JSON" in err


def test_a_truncated_sample_read_by_a_loader_worker(capsys, tiny_fusions, tmp_path):
    root = tmp_path / "fusions"
    shutil.copytree(tiny_fusions, root)
    for sample in (root / "samples").iterdir():
        data = sample.read_bytes()
        sample.write_bytes(data[: len(data) // 3])
    args = tiny_overrides(root, tmp_path, "truncated", **{"train.num_workers": 1})
    err = user_error(capsys, [CONFIG, *args, "--resume", "none"])
    assert str(root / "samples") in err


def test_a_missing_teacher_weight_file(capsys, tiny_fusions, tmp_path):
    gone = tmp_path / "gone.pth"
    args = tiny_overrides(tiny_fusions, tmp_path, "no_teacher", **{"teacher.weights": gone})
    err = user_error(capsys, [CONFIG, *args, "--resume", "none"])
    assert str(gone) in err and "do not exist" in err


def test_a_teacher_weight_file_of_another_network(capsys, tiny_fusions, tmp_path):
    from pixvox.models.teacher.resnet import resnet

    other = tmp_path / "resnet18.pth"
    torch.save(resnet("resnet18").state_dict(), other)
    args = tiny_overrides(tiny_fusions, tmp_path, "wrong_teacher", **{"teacher.weights": other})
    err = user_error(capsys, [CONFIG, *args, "--resume", "none"])
    assert str(other) in err and "does not fit efficientnet_lite0" in err


def test_a_damaged_checkpoint(capsys, tiny_fusions, tmp_path):
    bad = tmp_path / "step_00000002.pt"
    bad.write_bytes(b"not a checkpoint")
    err = user_error(capsys, [CONFIG, *tiny_overrides(tiny_fusions, tmp_path, "dmg"), "--resume", str(bad)])
    assert str(bad) in err and "cannot load checkpoint" in err


def _teacher_file(path: Path, seed: int | None) -> Path:
    """The Quickstart teacher's (EfficientNet-Lite0) ImageNet weights, perturbed when ``seed`` is set."""
    from pixvox.models.teacher.weights import resolve_teacher_weights

    state, _ = resolve_teacher_weights("efficientnet_lite0", "imagenet")
    if seed is not None:  # relative noise: running variances stay positive
        g = torch.Generator().manual_seed(seed)
        state = {
            k: v * (1 + 1e-3 * torch.randn(v.shape, generator=g)) if v.is_floating_point() else v
            for k, v in state.items()
        }
    torch.save(state, path)
    return path


def test_resume_compares_config_and_teacher_weights(capsys, tiny_fusions, tmp_path):
    teacher = _teacher_file(tmp_path / "teacher.pth", seed=None)
    common = {"teacher.weights": teacher, "train.max_steps": 2, "train.checkpoint_every": 2}
    first = tiny_overrides(tiny_fusions, tmp_path, "run", **common)
    assert cli.main(["pretrain", CONFIG, *first, "--resume", "none"]) == 0
    ck = load_checkpoint(latest_checkpoint(tmp_path / "run/checkpoints"))
    assert ck["weight_files"]["teacher.weights"]["path"] == str(teacher)
    assert ck["config"]["loss"]["terms"][0]["temperature"] == 0.07
    capsys.readouterr()

    # 1) another temperature: refused, naming the key and both values
    longer = {**common, "train.max_steps": 4}
    hotter = tiny_overrides(tiny_fusions, tmp_path, "run", **longer, **{"loss.temperature": 0.1})
    err = user_error(capsys, [CONFIG, *hotter])
    assert "loss.terms[0].temperature: 0.07 in the checkpoint, 0.1 now" in err and "--resume force" in err
    assert "teacher.weights" not in err  # only what differs is listed

    # 2) another teacher file of the same architecture at the same path: refused, naming the file
    _teacher_file(teacher, seed=1)
    same = tiny_overrides(tiny_fusions, tmp_path, "run", **longer)
    err = user_error(capsys, [CONFIG, *same])
    assert f"weight file teacher.weights: {teacher}" in err and "temperature" not in err

    # 3) forced: resumes at step 2 and finishes; the new checkpoint records the new file and config
    assert cli.main(["pretrain", CONFIG, *hotter, "--resume", "force"]) == 0
    steps = [r["step"] for r in read_metrics(tmp_path / "run/metrics.jsonl") if "loss" in r]
    assert steps == [1, 2, 3, 4]
    ck = load_checkpoint(latest_checkpoint(tmp_path / "run/checkpoints"))
    assert ck["step"] == 4 and ck["config"]["loss"]["terms"][0]["temperature"] == 0.1
    from pixvox.io.atomic import sha256_file

    assert ck["weight_files"]["teacher.weights"]["sha256"] == sha256_file(teacher)


def test_a_checkpoint_of_another_student_does_not_fit(capsys, tiny_fusions, tmp_path):
    args = tiny_overrides(tiny_fusions, tmp_path, "s", **{"train.max_steps": 1, "train.checkpoint_every": 1})
    assert cli.main(["pretrain", CONFIG, *args, "--resume", "none"]) == 0
    ck = latest_checkpoint(tmp_path / "s/checkpoints")
    other = tiny_overrides(
        tiny_fusions, tmp_path, "t", **{"student.name": "Res16UNet14T", "train.max_steps": 2}
    )
    capsys.readouterr()
    err = user_error(capsys, [CONFIG, *other, "--resume", f"force:{ck}"])
    assert str(ck) in err and "does not fit this network" in err and "of another shape" in err


@pytest.mark.parametrize("job", ["pretrain", "finetune"])
def test_an_unknown_key_is_reported_before_anything_runs(capsys, tmp_path, job):
    code = cli.main([job, "train.max_stepz=10", f"experiment.output_root={tmp_path}"])
    err = capsys.readouterr().err
    assert code == EXIT_USER_ERROR and "unknown key 'train.max_stepz'" in err and "Traceback" not in err
    assert not any(tmp_path.iterdir())  # no run folder was made
