"""load_student_weights: save → load round trip, fine-tuning head swap, reports and refusals."""

from __future__ import annotations

import pytest
import torch

from pixvox.models import build_student, build_teacher_backbone, load_student_weights


def _outputs(model, x):
    with torch.no_grad():
        return model.eval()(x).F


def test_save_load_round_trip(tmp_path, seed, make_sparse_input):
    torch.manual_seed(seed)
    x = make_sparse_input(seed)
    src = build_student("Res16UNet14T", 3, 16)
    src.train()
    with torch.no_grad():  # move BN running statistics away from their initial values
        src(x)
    path = tmp_path / "student.pth"
    torch.save(src.state_dict(), path)

    torch.manual_seed(seed + 1)
    dst = build_student("Res16UNet14T", 3, 16)
    assert not torch.equal(_outputs(src, x), _outputs(dst, x))
    report = load_student_weights(dst, path, expected_missing_prefixes=())
    assert report.complete and not report.unexpected and not report.expected_missing
    assert set(report.loaded) == set(src.state_dict())
    torch.testing.assert_close(_outputs(dst, x), _outputs(src, x), rtol=0, atol=0)


def test_fine_tuning_replaces_final(seed, make_sparse_input):
    """Pretrained (D=64) → fine-tuning net (20 classes): all but ``final`` loads; features are identical."""
    torch.manual_seed(seed)
    x = make_sparse_input(seed)
    pretrained = build_student("Res16UNet14T", 3, 64).eval()
    finetune = build_student("Res16UNet14T", 3, 20).eval()
    final_before = finetune.final.kernel.detach().clone()
    # a pixvox checkpoint dict, saved from DistributedDataParallel
    ckpt = {"student": {f"module.{k}": v for k, v in pretrained.state_dict().items()}, "epoch": 3}
    report = load_student_weights(finetune, ckpt)
    assert sorted(report.expected_missing) == ["final.bias", "final.kernel"]
    assert report.complete and not report.missing and not report.shape_mismatched and not report.unexpected
    assert torch.equal(finetune.final.kernel, final_before)  # the new head keeps its initialization
    with torch.no_grad():
        torch.testing.assert_close(finetune.forward_features(x).F, pretrained.forward_features(x).F)


def test_report_lists_missing_unexpected_and_mismatched():
    src = build_student("Res16UNet14T", 3, 8).state_dict()
    dst = build_student("Res16UNet14T", 3, 8, planes=(16, 32, 48, 64, 64, 48, 32, 24))
    src.pop("block1.0.conv1.kernel")
    src["extra.weight"] = torch.zeros(3)
    report = load_student_weights(dst, src, expected_missing_prefixes=())
    assert report.missing == ["block1.0.conv1.kernel"]
    assert report.unexpected == ["extra.weight"]
    mismatched = {k for k, _, _ in report.shape_mismatched}
    assert "final.kernel" in mismatched and "block8.0.conv1.kernel" in mismatched
    assert not report.complete
    assert "block1.0.conv1.kernel" in str(report)


def test_refuses_a_checkpoint_that_matches_nothing(tmp_path):
    model = build_student("Res16UNet14T", 3, 8)
    with pytest.warns(UserWarning, match="RANDOM"):
        teacher_backbone, _ = build_teacher_backbone("resnet18", weights="none")
    with pytest.raises(ValueError, match="no tensor"):
        load_student_weights(model, teacher_backbone.state_dict())
    # a different variant: only shape-less BN counters could match by name, and they do not count
    with pytest.raises(ValueError, match="no tensor"):
        load_student_weights(model, build_student("Res16UNet14", 3, 8).state_dict())
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_student_weights(model, tmp_path / "missing.pth")
    bad = tmp_path / "truncated.pth"
    bad.write_bytes(b"PK\x03\x04 not a checkpoint")
    with pytest.raises(ValueError, match="truncated.pth"):
        load_student_weights(model, bad)
