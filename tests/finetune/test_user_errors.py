"""Fine-tuning through `pixvox finetune`: user errors exit with status 2 and one message (no
traceback); resuming compares the init checkpoint's SHA-256 (issue 14 item 3)."""

from __future__ import annotations

from pixvox import cli
from pixvox.engine.logger import read_metrics
from pixvox.errors import EXIT_USER_ERROR

from .conftest import make_pretrain_checkpoint
from .test_run import CONFIG, tiny_args


def user_error(capsys, argv: list[str]) -> str:
    code = cli.main(["finetune", *argv])
    err = capsys.readouterr().err
    assert code == EXIT_USER_ERROR, err
    assert "Traceback" not in err
    assert len([ln for ln in err.splitlines() if ln.startswith("pixvox finetune: error: ")]) == 1, err
    return err


def test_missing_labeled_clouds(capsys, tmp_path):
    err = user_error(capsys, [CONFIG, *tiny_args(tmp_path / "none", tmp_path, "m"), "--resume", "none"])
    assert str(tmp_path / "none" / "index.json") in err and "not found" in err


def test_a_malformed_cloud_index(capsys, tmp_path):
    root = tmp_path / "clouds"
    root.mkdir()
    (root / "index.json").write_text('{"format": "something else"}')
    err = user_error(capsys, [CONFIG, *tiny_args(root, tmp_path, "b"), "--resume", "none"])
    assert str(root / "index.json") in err and "format" in err


def test_init_checkpoints_that_are_missing_damaged_or_of_another_student(capsys, tiny_rooms, tmp_path):
    def run(ck) -> str:
        extra = {"init.mode": "pretrained", "init.checkpoint": ck}
        return user_error(
            capsys, [CONFIG, *tiny_args(tiny_rooms, tmp_path, "i", **extra), "--resume", "none"]
        )

    assert "no pretraining checkpoint there" in run(tmp_path / "nowhere")
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"garbage")
    assert f"cannot load checkpoint {bad}" in run(bad)
    make_pretrain_checkpoint(tmp_path / "pre14s", name="Res16UNet14S")  # the config trains Res16UNet14T
    assert "was pretrained with student.name=Res16UNet14S" in run(tmp_path / "pre14s")


def test_resume_refuses_another_init_checkpoint(capsys, tiny_rooms, tmp_path):
    make_pretrain_checkpoint(tmp_path / "pre", seed=0)
    extra = {"init.mode": "pretrained", "init.checkpoint": tmp_path / "pre", "eval.export_ply": 0}
    assert (
        cli.main(["finetune", CONFIG, *tiny_args(tiny_rooms, tmp_path, "ft", **extra), "--resume", "none"])
        == 0
    )
    capsys.readouterr()
    make_pretrain_checkpoint(tmp_path / "pre", seed=1)  # the same file name, other weights
    longer = tiny_args(tiny_rooms, tmp_path, "ft", **extra, **{"train.max_steps": 5})
    err = user_error(capsys, [CONFIG, *longer])
    assert f"weight file init.checkpoint: {tmp_path / 'pre' / 'checkpoints' / 'step_00000010.pt'}" in err
    assert cli.main(["finetune", CONFIG, *longer, "--resume", "force"]) == 0
    assert [r["step"] for r in read_metrics(tmp_path / "ft/metrics.jsonl") if "loss" in r] == [1, 2, 3, 4, 5]
