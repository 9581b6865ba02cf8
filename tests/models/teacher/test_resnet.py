"""ResNet teacher backbones: torchvision's layout, parameter counts and forward semantics.

The torchvision layout is written out here independently of the implementation (names and shapes
from torchvision's ResNet definition), and the forward pass is checked against a functional float64
re-derivation, so a wiring mistake (e.g. the stride on the wrong Bottleneck convolution) fails.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from pixvox.models.teacher import build_teacher_backbone
from pixvox.models.teacher.resnet import resnet

# torchvision.models.resnetXX(): published parameter counts
TORCHVISION_PARAMETERS = {"resnet18": 11_689_512, "resnet34": 21_797_672, "resnet50": 25_557_032}
DEPTHS = {
    "resnet18": ("basic", (2, 2, 2, 2)),
    "resnet34": ("basic", (3, 4, 6, 3)),
    "resnet50": ("bottleneck", (3, 4, 6, 3)),
}


def torchvision_layout(name: str) -> dict[str, tuple[int, ...]]:
    """Key → shape of torchvision's ResNet state dict (BN: weight, bias, running stats, counter)."""
    shapes: dict[str, tuple[int, ...]] = {}

    def bn(prefix: str, c: int) -> None:
        for s in ("weight", "bias", "running_mean", "running_var"):
            shapes[f"{prefix}.{s}"] = (c,)
        shapes[f"{prefix}.num_batches_tracked"] = ()

    kind, blocks = DEPTHS[name]
    expansion = 1 if kind == "basic" else 4
    shapes["conv1.weight"] = (64, 3, 7, 7)
    bn("bn1", 64)
    inplanes = 64
    for stage, (planes, n) in enumerate(zip((64, 128, 256, 512), blocks), start=1):
        for j in range(n):
            p = f"layer{stage}.{j}"
            cin = inplanes if j == 0 else planes * expansion
            if kind == "basic":
                shapes[f"{p}.conv1.weight"] = (planes, cin, 3, 3)
                bn(f"{p}.bn1", planes)
                shapes[f"{p}.conv2.weight"] = (planes, planes, 3, 3)
                bn(f"{p}.bn2", planes)
            else:
                shapes[f"{p}.conv1.weight"] = (planes, cin, 1, 1)
                bn(f"{p}.bn1", planes)
                shapes[f"{p}.conv2.weight"] = (planes, planes, 3, 3)
                bn(f"{p}.bn2", planes)
                shapes[f"{p}.conv3.weight"] = (planes * 4, planes, 1, 1)
                bn(f"{p}.bn3", planes * 4)
            if j == 0 and (stage > 1 or cin != planes * expansion):
                shapes[f"{p}.downsample.0.weight"] = (planes * expansion, cin, 1, 1)
                bn(f"{p}.downsample.1", planes * expansion)
        inplanes = planes * expansion
    shapes["fc.weight"] = (1000, 512 * expansion)
    shapes["fc.bias"] = (1000,)
    return shapes


def random_torchvision_state_dict(name: str, gen: torch.Generator) -> dict[str, torch.Tensor]:
    """Random values in torchvision's layout with sane scales (positive running variances)."""
    state = {}
    for key, shape in torchvision_layout(name).items():
        if key.endswith("num_batches_tracked"):
            state[key] = torch.tensor(7)
        elif key.endswith("running_var"):
            state[key] = 0.5 + torch.rand(shape, generator=gen)
        elif key.endswith(("running_mean", "bias")):
            state[key] = 0.1 * torch.randn(shape, generator=gen)
        elif key.endswith("weight") and len(shape) == 1:  # BN scale
            state[key] = 0.5 + 0.5 * torch.rand(shape, generator=gen)
        else:
            fan_in = max(1, int(torch.tensor(shape[1:]).prod()))
            state[key] = torch.randn(shape, generator=gen) * (2.0 / fan_in) ** 0.5
    return state


def functional_resnet(state: dict[str, torch.Tensor], name: str, x: torch.Tensor) -> torch.Tensor:
    """ImageNet ResNet v1.5 inference from the spec, in whatever dtype ``x`` has."""
    s = {k: v.to(x.dtype) if v.is_floating_point() else v for k, v in state.items()}

    def bn(t, p):
        return F.batch_norm(
            t, s[f"{p}.running_mean"], s[f"{p}.running_var"], s[f"{p}.weight"], s[f"{p}.bias"], eps=1e-5
        )

    kind, blocks = DEPTHS[name]
    x = F.relu(bn(F.conv2d(x, s["conv1.weight"], stride=2, padding=3), "bn1"))
    x = F.max_pool2d(x, 3, stride=2, padding=1)
    for stage, n in enumerate(blocks, start=1):
        for j in range(n):
            p = f"layer{stage}.{j}"
            stride = 2 if (stage > 1 and j == 0) else 1
            if kind == "basic":
                y = F.relu(bn(F.conv2d(x, s[f"{p}.conv1.weight"], stride=stride, padding=1), f"{p}.bn1"))
                y = bn(F.conv2d(y, s[f"{p}.conv2.weight"], padding=1), f"{p}.bn2")
            else:  # v1.5: the 3x3 convolution carries the stride
                y = F.relu(bn(F.conv2d(x, s[f"{p}.conv1.weight"]), f"{p}.bn1"))
                y = F.relu(bn(F.conv2d(y, s[f"{p}.conv2.weight"], stride=stride, padding=1), f"{p}.bn2"))
                y = bn(F.conv2d(y, s[f"{p}.conv3.weight"]), f"{p}.bn3")
            if f"{p}.downsample.0.weight" in s:
                x = bn(F.conv2d(x, s[f"{p}.downsample.0.weight"], stride=stride), f"{p}.downsample.1")
            x = F.relu(y + x)
    return F.linear(x.mean(dim=(2, 3)), s["fc.weight"], s["fc.bias"])


@pytest.mark.parametrize("name", sorted(TORCHVISION_PARAMETERS))
def test_layout_and_parameter_count_match_torchvision(name):
    model = resnet(name)
    assert sum(p.numel() for p in model.parameters()) == TORCHVISION_PARAMETERS[name]
    got = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    assert got == torchvision_layout(name)


@pytest.mark.parametrize("name", ["resnet18", "resnet50"])
def test_strict_load_from_path_and_forward_matches_reference(name, tmp_path, seed):
    gen = torch.Generator().manual_seed(seed)
    state = random_torchvision_state_dict(name, gen)
    path = tmp_path / f"{name}-user.pth"
    torch.save(state, path)
    model, source = build_teacher_backbone(name, weights=str(path))
    assert source == str(path)
    for key, value in state.items():
        assert torch.equal(model.state_dict()[key], value), key
    x = torch.randn(2, 3, 67, 45, generator=gen)  # odd sizes exercise padding/rounding
    model.double().eval()
    with torch.no_grad():
        got = model(x.double())
    want = functional_resnet(state, name, x.double())
    torch.testing.assert_close(got, want, rtol=1e-9, atol=1e-9)


def test_stage_outputs(seed):
    model = resnet("resnet34").eval()
    x = torch.randn(1, 3, 101, 77, generator=torch.Generator().manual_seed(seed))
    with torch.no_grad():
        stages = model.forward_stages(x)
    sizes = [(t.shape[1], t.shape[2], t.shape[3]) for t in stages]
    # ceil(H / stride) per stage (each stride-2 step rounds up)
    assert sizes == [(64, 26, 20), (128, 13, 10), (256, 7, 5), (512, 4, 3)]
