"""The resume policy: --resume values, config and weight-file comparison, the model-state fit check."""

from __future__ import annotations

import hashlib

import pytest
import torch

from pixvox.engine import checkpoint as ckpt
from pixvox.engine.resume import (
    Provenance,
    ResumeRequest,
    config_differences,
    load_model_state,
    parse_resume,
    resume_training,
)
from pixvox.errors import CheckpointMismatchError, ResumeMismatchError, UserError


def test_parse_resume_values():
    assert parse_resume("auto") == ResumeRequest("auto", False)
    assert parse_resume("none") == ResumeRequest(None, False)
    assert parse_resume("") == ResumeRequest(None, False)
    assert parse_resume("force") == ResumeRequest("auto", True)
    assert parse_resume("force:runs/a/step_00000010.pt") == ResumeRequest("runs/a/step_00000010.pt", True)
    assert parse_resume("runs/a/step_00000010.pt") == ResumeRequest("runs/a/step_00000010.pt", False)


def test_config_differences_name_keys_and_skip_the_ones_that_may_change():
    saved = {"loss": {"temperature": 0.07, "num_pairs": 64}, "train": {"max_steps": 4, "batch_size": 4}}
    now = {"loss": {"temperature": 0.1, "num_pairs": 64}, "train": {"max_steps": 8, "batch_size": 4}}
    assert config_differences(saved, now) == ["loss.temperature: 0.07 in the checkpoint, 0.1 now"]
    assert config_differences(saved, saved) == []
    # lists and tuples of the same values are the same config (YAML and torch.save keep lists)
    assert config_differences({"a": [1, 2]}, {"a": (1, 2)}) == []


def test_a_key_the_checkpoint_lacks_counts_as_its_default():
    saved = {"train": {"batch_size": 4}}
    now = {"train": {"batch_size": 4, "new_key": 1}}
    assert config_differences(saved, now, defaults={"train": {"new_key": 1}}) == []
    assert config_differences(saved, now, defaults={"train": {"new_key": 0}}) == [
        "train.new_key: 0 in the checkpoint, 1 now"
    ]
    assert config_differences(saved, now) == ["train.new_key: (absent) in the checkpoint, 1 now"]


def test_weight_files_are_hashed_and_compared(tmp_path):
    f = tmp_path / "teacher.pth"
    f.write_bytes(b"weights A")
    p = Provenance({"x": 1}, {"teacher.weights": f})
    rec = p.file_records()
    assert rec == {"teacher.weights": {"path": str(f), "sha256": hashlib.sha256(b"weights A").hexdigest()}}
    state = p.checkpoint_entries()
    assert Provenance({"x": 1}, {"teacher.weights": f}).differences(state) == []
    f.write_bytes(b"weights B")  # another file at the same path
    diffs = Provenance({"x": 1}, {"teacher.weights": f}).differences(state)
    assert len(diffs) == 1 and diffs[0].startswith("weight file teacher.weights:") and str(f) in diffs[0]
    assert Provenance({"x": 1}, {}).differences(state) == [
        f"weight file teacher.weights: {f} (sha256 {rec['teacher.weights']['sha256'][:12]}) in the "
        "checkpoint, no file now"
    ]


def test_checkpoints_without_records_resume_as_before():
    assert Provenance({"x": 1}, {}).differences({"model": {}}) == []


def _tiny(seed: int = 0, width: int = 3) -> torch.nn.Module:
    torch.manual_seed(seed)
    return torch.nn.Sequential(torch.nn.Linear(2, width), torch.nn.BatchNorm1d(width))


def test_load_model_state_needs_exactly_the_saved_tensors(tmp_path):
    src, dst = _tiny(0), _tiny(1)
    keys = list(src.state_dict())
    load_model_state(dst, src.state_dict(), keys, tmp_path / "c.pt")
    for k, v in src.state_dict().items():
        assert torch.equal(dst.state_dict()[k], v), k
    partial = {k: v for k, v in src.state_dict().items() if k != "0.bias"}
    with pytest.raises(CheckpointMismatchError, match=r"1 missing tensors \['0.bias'\]"):
        load_model_state(dst, partial, keys, tmp_path / "c.pt")
    with pytest.raises(CheckpointMismatchError, match=r"1 unexpected \['extra'\]"):
        load_model_state(dst, {**src.state_dict(), "extra": torch.zeros(1)}, keys, tmp_path / "c.pt")
    wide = _tiny(0, width=4)
    with pytest.raises(CheckpointMismatchError, match="of another shape"):
        load_model_state(dst, wide.state_dict(), keys, tmp_path / "c.pt")


def test_tensors_outside_the_saved_set_keep_their_values(tmp_path):
    src, dst = _tiny(0), _tiny(1)
    frozen = dst.state_dict()["1.weight"].clone()
    saved = {k: v for k, v in src.state_dict().items() if not k.startswith("1.")}
    load_model_state(dst, saved, saved.keys(), tmp_path / "c.pt")
    assert torch.equal(dst.state_dict()["1.weight"], frozen)
    assert torch.equal(dst.state_dict()["0.weight"], src.state_dict()["0.weight"])


def _save_run(ckpt_dir, net, opt, sched, config, files):
    prov = Provenance(config, files)
    state = {"step": 5, "model": net.state_dict(), "optimizer": opt.state_dict(), "scheduler": sched.state_dict(),
             "rng": ckpt.rng_state(), **prov.checkpoint_entries()}  # fmt: skip
    ckpt.save_checkpoint(ckpt_dir, 5, state)


def test_resume_training_refuses_a_changed_config_unless_forced(tmp_path):
    net = _tiny(0)
    opt = torch.optim.SGD(net.parameters(), lr=0.1)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 1.0)
    _save_run(tmp_path, net, opt, sched, {"loss": {"temperature": 0.07}}, {})

    def resume(request, config):
        fresh = _tiny(1)
        o = torch.optim.SGD(fresh.parameters(), lr=0.1)
        s = torch.optim.lr_scheduler.LambdaLR(o, lambda s: 1.0)
        step = resume_training(
            request, tmp_path, provenance=Provenance(config, {}), net=fresh, model_keys=fresh.state_dict().keys(),
            optimizer=o, scheduler=s, scaler=None, device=torch.device("cpu"),
        )  # fmt: skip
        return step, fresh

    with pytest.raises(
        ResumeMismatchError, match=r"loss.temperature: 0.07 in the checkpoint, 0.1 now"
    ) as info:
        resume(parse_resume("auto"), {"loss": {"temperature": 0.1}})
    assert isinstance(info.value, UserError) and "--resume force" in str(info.value)
    step, fresh = resume(parse_resume("force"), {"loss": {"temperature": 0.1}})
    assert step == 5 and torch.equal(fresh.state_dict()["0.weight"], net.state_dict()["0.weight"])
    assert resume(parse_resume("auto"), {"loss": {"temperature": 0.07}})[0] == 5
    assert resume(parse_resume("none"), {"loss": {"temperature": 0.1}})[0] == 0
