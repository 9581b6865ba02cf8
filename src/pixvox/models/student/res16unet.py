"""Res16UNet: the residual sparse 3D U-Net used across sparse-voxel pretraining (Choy et al. 2019).

Four stride-2 encoder stages (strides 2, 4, 8, 16) and four decoder stages with transposed
convolutions and skip concatenations back to stride 1, then a 1×1×1 layer ``final``. The family's
variants differ in the residual block (basic/bottleneck), blocks per stage (``layers``, 8 entries:
4 encoder then 4 decoder stages) and widths (``planes``, same order); see ``variants.py``.

State-dict layout (stable; it matches the community's Res16UNet checkpoints, e.g. PointContrast's
Res16UNet34C, so they load by name):

====================  =============================================================
``conv0p1s1``/``bn0``  stem convolution (``conv1_kernel_size``) at stride 1 + BN
``convKp{s}s2``/``bnK``  stride-2 downsampling conv for encoder stage K = 1..4 (s = 1, 2, 4, 8)
``blockK.J.*``        residual block J of stage K = 1..8 (``conv1``, ``norm1``, ``conv2``, ``norm2``,
                      [``conv3``, ``norm3``], ``downsample.0``/``.1`` where the width changes)
``convtrKp{s}s2``/``bntrK``  transposed conv K = 4..7 from stride s = 16, 8, 4, 2
``final``             1×1×1 conv to ``out_channels`` with bias (replaced when fine-tuning)
====================  =============================================================

Each ``conv*``/``convtr*``/``final`` holds ``kernel`` ``[kernel_volume, in, out]`` (``final.bias``
``[1, out]``); each BatchNorm holds ``.bn.weight/bias/running_mean/running_var/num_batches_tracked``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn

from pixvox.models.student.blocks import (
    SparseBasicBlock,
    SparseBottleneck,
    sparse_bn,
    sparse_conv,
    sparse_conv_transpose,
)
from pixvox.sparse import ME, check_not_empty

__all__ = ["Res16UNet", "BLOCK_TYPES"]

BLOCK_TYPES: dict[str, type[nn.Module]] = {"basic": SparseBasicBlock, "bottleneck": SparseBottleneck}


class Res16UNet(nn.Module):
    """Residual sparse U-Net on 3D voxels.

    Args:
        in_channels: input feature width (3 for RGB in [0, 1] or centred, 1 for constant ones when
            training on geometry only).
        out_channels: width of ``final`` (embedding width D when pretraining, number of classes when
            fine-tuning).
        block: ``"basic"`` or ``"bottleneck"``.
        layers: residual blocks per stage, 8 ints (encoder stages 1-4, decoder stages 5-8).
        planes: widths of the 8 stages.
        init_dim: width of the stem (stride 1, concatenated into the last decoder stage).
        kernel_size: kernel of the residual blocks.
        conv1_kernel_size: kernel of the stem convolution.
        bn_momentum: momentum of every BatchNorm.

    ``forward(x)``: ``ME.SparseTensor`` ``[N, in_channels]`` at tensor stride 1 → ``[N, out_channels]``
    on the same coordinate map, rows in the map's order (which is not necessarily the order of the
    input coordinates: use :func:`pixvox.sparse.features_in_input_order`).
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        block: str = "basic",
        layers: Sequence[int] = (2, 3, 4, 6, 2, 2, 2, 2),
        planes: Sequence[int] = (32, 64, 128, 256, 256, 128, 96, 96),
        init_dim: int = 32,
        kernel_size: int = 3,
        conv1_kernel_size: int = 3,
        bn_momentum: float = 0.1,
    ):
        super().__init__()
        if block not in BLOCK_TYPES:
            raise ValueError(f"block must be one of {sorted(BLOCK_TYPES)}, got {block!r}")
        layers, planes = tuple(int(n) for n in layers), tuple(int(p) for p in planes)
        if len(layers) != 8 or len(planes) != 8:
            raise ValueError(f"layers and planes need 8 entries each, got {len(layers)} and {len(planes)}")
        if min(layers) < 1 or min(planes) < 1 or in_channels < 1 or out_channels < 1:
            raise ValueError(f"widths and depths must be positive: layers={layers}, planes={planes}")
        Block = BLOCK_TYPES[block]
        e = Block.expansion
        self.in_channels, self.out_channels = in_channels, out_channels
        self.config = dict(
            block=block, layers=layers, planes=planes, init_dim=init_dim, kernel_size=kernel_size,
            conv1_kernel_size=conv1_kernel_size, bn_momentum=bn_momentum,
        )  # fmt: skip
        self._bn_momentum, self._kernel_size = bn_momentum, kernel_size

        self.conv0p1s1 = sparse_conv(in_channels, init_dim, conv1_kernel_size)
        self.bn0 = sparse_bn(init_dim, bn_momentum)
        # encoder: stride-2 conv (kernel 2) keeps the width, then the stage's blocks change it
        widths = [init_dim]
        for k, stride_in in enumerate((1, 2, 4, 8), start=1):
            setattr(self, f"conv{k}p{stride_in}s2", sparse_conv(widths[-1], widths[-1], 2, stride=2))
            setattr(self, f"bn{k}", sparse_bn(widths[-1], bn_momentum))
            setattr(self, f"block{k}", self._make_stage(Block, widths[-1], planes[k - 1], layers[k - 1]))
            widths.append(planes[k - 1] * e)
        # decoder: transposed conv to planes[k], concatenated with the encoder map of the same stride
        width = widths[-1]
        for k, stride_in in zip((4, 5, 6, 7), (16, 8, 4, 2)):
            up = planes[k]
            setattr(self, f"convtr{k}p{stride_in}s2", sparse_conv_transpose(width, up, 2, stride=2))
            setattr(self, f"bntr{k}", sparse_bn(up, bn_momentum))
            skip = widths[7 - k]  # encoder output at stride stride_in / 2
            setattr(self, f"block{k + 1}", self._make_stage(Block, up + skip, planes[k], layers[k]))
            width = planes[k] * e
        self.feature_channels = width
        self.final = sparse_conv(width, out_channels, 1, bias=True)
        self.relu = ME.MinkowskiReLU(inplace=True)
        self.reset_parameters()

    def _make_stage(self, Block: type[nn.Module], inplanes: int, planes: int, blocks: int) -> nn.Sequential:
        out = planes * Block.expansion
        stage = []
        for j in range(blocks):
            downsample = None
            if j == 0 and inplanes != out:
                downsample = nn.Sequential(sparse_conv(inplanes, out, 1), sparse_bn(out, self._bn_momentum))
            stage.append(
                Block(
                    inplanes if j == 0 else out,
                    planes,
                    downsample=downsample,
                    kernel_size=self._kernel_size,
                    bn_momentum=self._bn_momentum,
                )
            )
        return nn.Sequential(*stage)

    def reset_parameters(self) -> None:
        """He-uniform kernels (fan-out = kernel volume × output width), BN to identity, zero biases.

        Same variance as the He-normal init of the reference code; uniform sampling is twice as fast,
        which matters for the 40-80 M parameter variants.
        """
        for m in self.modules():
            if isinstance(m, (ME.MinkowskiConvolution, ME.MinkowskiConvolutionTranspose)):
                kernel_volume = m.kernel.shape[0] if m.kernel.ndim == 3 else 1
                bound = math.sqrt(3.0) * math.sqrt(2.0 / (kernel_volume * m.kernel.shape[-1]))
                with torch.no_grad():
                    m.kernel.uniform_(-bound, bound)
                    if m.bias is not None:
                        m.bias.zero_()
            elif isinstance(m, ME.MinkowskiBatchNorm):
                nn.init.ones_(m.bn.weight)
                nn.init.zeros_(m.bn.bias)

    def forward_features(self, x: ME.SparseTensor) -> ME.SparseTensor:
        """Decoder output before ``final``: ``[N, feature_channels]`` on the input coordinates."""
        check_not_empty(x, "student input")
        if x.F.shape[1] != self.in_channels:
            raise ValueError(f"student expects {self.in_channels} input channels, got {x.F.shape[1]}")
        if list(x.tensor_stride) != [1, 1, 1]:
            raise ValueError(f"student expects input voxels at tensor stride 1, got {x.tensor_stride}")
        out_p1 = self.relu(self.bn0(self.conv0p1s1(x)))
        out_b1p2 = self.block1(self.relu(self.bn1(self.conv1p1s2(out_p1))))
        out_b2p4 = self.block2(self.relu(self.bn2(self.conv2p2s2(out_b1p2))))
        out_b3p8 = self.block3(self.relu(self.bn3(self.conv3p4s2(out_b2p4))))
        out = self.block4(self.relu(self.bn4(self.conv4p8s2(out_b3p8))))

        out = self.relu(self.bntr4(self.convtr4p16s2(out)))
        out = self.block5(ME.cat(out, out_b3p8))
        out = self.relu(self.bntr5(self.convtr5p8s2(out)))
        out = self.block6(ME.cat(out, out_b2p4))
        out = self.relu(self.bntr6(self.convtr6p4s2(out)))
        out = self.block7(ME.cat(out, out_b1p2))
        out = self.relu(self.bntr7(self.convtr7p2s2(out)))
        return self.block8(ME.cat(out, out_p1))

    def forward(self, x: ME.SparseTensor) -> ME.SparseTensor:
        return self.final(self.forward_features(x))

    def extra_repr(self) -> str:
        return f"in_channels={self.in_channels}, out_channels={self.out_channels}, {self.config}"
