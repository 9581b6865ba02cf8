"""ResNet-18/34/50 with torchvision's exact parameter names and shapes.

torchvision is not a dependency of pixvox, but users hold torchvision ImageNet checkpoints
(``resnet50-0676ba61.pth`` and friends); this module rebuilds the same network (ResNet v1.5: the
stride of a Bottleneck sits on its 3x3 convolution) so those files load with ``strict=True``.

State-dict layout (identical to torchvision): ``conv1``, ``bn1``, ``layer1`` … ``layer4`` made of
blocks ``layerK.J.conv1/bn1/conv2/bn2`` (+ ``conv3/bn3`` for Bottleneck) and
``layerK.0.downsample.0`` (1x1 conv) / ``.1`` (BatchNorm) where the shape changes, then ``fc``.
"""

from __future__ import annotations

from typing import Callable

import torch
from torch import nn

__all__ = ["BasicBlock", "Bottleneck", "ResNet", "RESNET_SPECS", "resnet"]


class BasicBlock(nn.Module):
    """Two 3x3 convolutions with an identity (or 1x1 projection) shortcut."""

    expansion = 1

    def __init__(self, inplanes: int, planes: int, stride: int = 1, downsample: nn.Module | None = None):
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(planes, planes, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample = downsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shortcut = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + shortcut)


class Bottleneck(nn.Module):
    """1x1 reduce → 3x3 (carries the stride, as in torchvision's v1.5) → 1x1 expand by 4."""

    expansion = 4

    def __init__(self, inplanes: int, planes: int, stride: int = 1, downsample: nn.Module | None = None):
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride=stride, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, planes * self.expansion, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(planes * self.expansion)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shortcut = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return self.relu(out + shortcut)


#: depth → (block type, blocks per stage)
RESNET_SPECS: dict[str, tuple[type[nn.Module], tuple[int, int, int, int]]] = {
    "resnet18": (BasicBlock, (2, 2, 2, 2)),
    "resnet34": (BasicBlock, (3, 4, 6, 3)),
    "resnet50": (Bottleneck, (3, 4, 6, 3)),
}


class ResNet(nn.Module):
    """ImageNet ResNet returning its four stage outputs for a feature pyramid.

    Input: ``[B, 3, H, W]`` float, already normalized with ImageNet mean/std (the teacher wrapper
    does that). :meth:`forward_stages` returns C2..C5 at strides 4, 8, 16, 32 (sizes rounded up);
    :meth:`forward` returns ``[B, num_classes]`` ImageNet logits.
    """

    #: convention of the input normalization the ImageNet weights were trained with (RGB in [0, 1])
    input_mean = (0.485, 0.456, 0.406)
    input_std = (0.229, 0.224, 0.225)
    stage_strides = (4, 8, 16, 32)

    def __init__(
        self, block: Callable[..., nn.Module], layers: tuple[int, int, int, int], num_classes: int = 1000
    ):
        super().__init__()
        self.inplanes = 64
        self.conv1 = nn.Conv2d(3, 64, 7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, stride=2, padding=1)
        self.layer1 = self._make_stage(block, 64, layers[0], stride=1)
        self.layer2 = self._make_stage(block, 128, layers[1], stride=2)
        self.layer3 = self._make_stage(block, 256, layers[2], stride=2)
        self.layer4 = self._make_stage(block, 512, layers[3], stride=2)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(512 * block.expansion, num_classes)
        self.stage_channels = tuple(c * block.expansion for c in (64, 128, 256, 512))
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    def _make_stage(
        self, block: Callable[..., nn.Module], planes: int, blocks: int, stride: int
    ) -> nn.Sequential:
        downsample = None
        out_planes = planes * block.expansion
        if stride != 1 or self.inplanes != out_planes:
            downsample = nn.Sequential(
                nn.Conv2d(self.inplanes, out_planes, 1, stride=stride, bias=False), nn.BatchNorm2d(out_planes)
            )
        stage = [block(self.inplanes, planes, stride, downsample)]
        self.inplanes = out_planes
        stage += [block(self.inplanes, planes) for _ in range(1, blocks)]
        return nn.Sequential(*stage)

    def forward_stages(self, x: torch.Tensor) -> list[torch.Tensor]:
        """``[B, 3, H, W]`` → ``[C2, C3, C4, C5]`` with ``stage_channels`` channels at strides 4..32."""
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        c2 = self.layer1(x)
        c3 = self.layer2(c2)
        c4 = self.layer3(c3)
        c5 = self.layer4(c4)
        return [c2, c3, c4, c5]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``[B, 3, H, W]`` normalized images → ``[B, num_classes]`` logits."""
        c5 = self.forward_stages(x)[-1]
        return self.fc(torch.flatten(self.avgpool(c5), 1))


def resnet(name: str, num_classes: int = 1000) -> ResNet:
    """Build ``"resnet18"``, ``"resnet34"`` or ``"resnet50"`` with random weights."""
    if name not in RESNET_SPECS:
        raise ValueError(f"unknown ResNet {name!r}; choose one of {sorted(RESNET_SPECS)}")
    block, layers = RESNET_SPECS[name]
    return ResNet(block, layers, num_classes)
