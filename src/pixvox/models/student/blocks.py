"""Sparse residual blocks (3D, MinkowskiEngine) for the Res16UNet family.

Parameter names follow the Res16UNet code that the sparse-pretraining literature shares
(``conv1``/``norm1``/``conv2``/``norm2`` [``conv3``/``norm3``], ``downsample.0`` conv and
``downsample.1`` BatchNorm), so published checkpoints keep loading by name. A Minkowski convolution
stores ``kernel`` ``[kernel_volume, in, out]`` and, with bias, ``bias`` ``[1, out]``; a Minkowski
BatchNorm wraps ``torch.nn.BatchNorm1d`` as ``.bn`` (keys ``normX.bn.weight`` …).
"""

from __future__ import annotations

from torch import nn

from pixvox.sparse import ME

__all__ = ["sparse_conv", "sparse_conv_transpose", "sparse_bn", "SparseBasicBlock", "SparseBottleneck"]

DIMENSION = 3


def sparse_conv(
    in_channels: int,
    out_channels: int,
    kernel_size: int,
    stride: int = 1,
    dilation: int = 1,
    bias: bool = False,
) -> ME.MinkowskiConvolution:
    """3D sparse convolution (output on the input's coordinates when ``stride == 1``)."""
    return ME.MinkowskiConvolution(
        in_channels, out_channels, kernel_size=kernel_size, stride=stride, dilation=dilation, bias=bias,
        dimension=DIMENSION,
    )  # fmt: skip


def sparse_conv_transpose(
    in_channels: int, out_channels: int, kernel_size: int, stride: int, bias: bool = False
) -> ME.MinkowskiConvolutionTranspose:
    """3D sparse transposed convolution back onto the finer coordinate map of the same manager."""
    return ME.MinkowskiConvolutionTranspose(
        in_channels, out_channels, kernel_size=kernel_size, stride=stride, bias=bias, dimension=DIMENSION
    )


def sparse_bn(channels: int, momentum: float = 0.1) -> ME.MinkowskiBatchNorm:
    """BatchNorm over the active voxels (convertible to SyncBN by :func:`convert_sync_batchnorm`)."""
    return ME.MinkowskiBatchNorm(channels, momentum=momentum)


class SparseBasicBlock(nn.Module):
    """Two kxk×k sparse convolutions with a residual shortcut (expansion 1)."""

    expansion = 1

    def __init__(
        self,
        inplanes: int,
        planes: int,
        stride: int = 1,
        dilation: int = 1,
        downsample: nn.Module | None = None,
        kernel_size: int = 3,
        bn_momentum: float = 0.1,
    ):
        super().__init__()
        self.conv1 = sparse_conv(inplanes, planes, kernel_size, stride=stride, dilation=dilation)
        self.norm1 = sparse_bn(planes, bn_momentum)
        self.conv2 = sparse_conv(planes, planes, kernel_size, dilation=dilation)
        self.norm2 = sparse_bn(planes, bn_momentum)
        self.relu = ME.MinkowskiReLU(inplace=True)
        self.downsample = downsample

    def forward(self, x: ME.SparseTensor) -> ME.SparseTensor:
        shortcut = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.norm1(self.conv1(x)))
        out = self.norm2(self.conv2(out))
        return self.relu(out + shortcut)


class SparseBottleneck(nn.Module):
    """1×1×1 reduce → k×k×k → 1×1×1 expand by 4, with a residual shortcut."""

    expansion = 4

    def __init__(
        self,
        inplanes: int,
        planes: int,
        stride: int = 1,
        dilation: int = 1,
        downsample: nn.Module | None = None,
        kernel_size: int = 3,
        bn_momentum: float = 0.1,
    ):
        super().__init__()
        self.conv1 = sparse_conv(inplanes, planes, 1)
        self.norm1 = sparse_bn(planes, bn_momentum)
        self.conv2 = sparse_conv(planes, planes, kernel_size, stride=stride, dilation=dilation)
        self.norm2 = sparse_bn(planes, bn_momentum)
        self.conv3 = sparse_conv(planes, planes * self.expansion, 1)
        self.norm3 = sparse_bn(planes * self.expansion, bn_momentum)
        self.relu = ME.MinkowskiReLU(inplace=True)
        self.downsample = downsample

    def forward(self, x: ME.SparseTensor) -> ME.SparseTensor:
        shortcut = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.norm1(self.conv1(x)))
        out = self.relu(self.norm2(self.conv2(out)))
        out = self.norm3(self.conv3(out))
        return self.relu(out + shortcut)
