"""Moving features between pixels and voxels: scatter (pixels → voxels) and gather (voxels → pixels).

Both are differentiable. The backward of gather is a sum-scatter, of a sum-scatter a gather, of a
mean-scatter a gather of the gradient divided by the pixel counts, and of a max-scatter a routing of
each voxel's gradient to the pixel that won (first in pixel order on ties). All reductions are
deterministic: every voxel reduces its pixels in increasing pixel order, on CPU and CUDA alike.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import torch

from pixvox.ops._extension import kernel

#: Reduction name → code understood by the kernels (cuda_ext/voxel_key.h).
REDUCTIONS = {"sum": 0, "mean": 1, "max": 2}


class VoxelFeatures(NamedTuple):
    """Result of :func:`scatter_to_voxels`."""

    #: ``[V, C]`` reduced features (0 for voxels that received no pixel), dtype of the pixel features.
    features: torch.Tensor
    #: ``[V]`` int64 number of pixels per voxel.
    counts: torch.Tensor


def _check_index(voxel_index: torch.Tensor, pixels: int | None, device: torch.device) -> torch.Tensor:
    if not isinstance(voxel_index, torch.Tensor):
        raise TypeError(f"voxel_index must be a torch.Tensor, got {type(voxel_index).__name__}")
    if voxel_index.ndim != 1 or (pixels is not None and voxel_index.shape[0] != pixels):
        want = f"[{pixels}]" if pixels is not None else "[P]"
        raise ValueError(
            f"voxel_index must be {want} (one voxel row per pixel, -1 = none), got {tuple(voxel_index.shape)}"
        )
    if voxel_index.is_floating_point() or voxel_index.dtype == torch.bool:
        raise TypeError(f"voxel_index must be an integer tensor, got {voxel_index.dtype}")
    if voxel_index.device != device:
        raise ValueError(f"voxel_index is on {voxel_index.device}, the features on {device}")
    return voxel_index.long().contiguous()


class _ScatterToVoxels(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, pixel_feats: torch.Tensor, voxel_index: torch.Tensor, num_voxels: int, reduce: str):
        # The max backward needs each voxel's winning pixel; skip that bookkeeping without autograd.
        with_argmax = reduce == "max" and ctx.needs_input_grad[0]
        out, counts, argmax = kernel("scatter_to_voxels", pixel_feats.device)(
            pixel_feats.contiguous(), voxel_index, num_voxels, REDUCTIONS[reduce], with_argmax
        )
        ctx.mark_non_differentiable(counts)
        ctx.save_for_backward(voxel_index, counts, argmax)
        ctx.reduce = reduce
        ctx.num_pixels = pixel_feats.shape[0]
        return out, counts

    @staticmethod
    def backward(ctx: Any, grad_out: torch.Tensor, _grad_counts: torch.Tensor | None):
        if not ctx.needs_input_grad[0]:
            return None, None, None, None
        voxel_index, counts, argmax = ctx.saved_tensors
        if ctx.reduce == "sum":
            grad = _GatherFromVoxels.apply(grad_out, voxel_index)
        elif ctx.reduce == "mean":
            scale = counts.clamp_min(1).to(grad_out.dtype).unsqueeze(1)
            grad = _GatherFromVoxels.apply(grad_out / scale, voxel_index)
        else:
            channels = grad_out.shape[1]
            won = argmax >= 0
            cols = torch.arange(channels, device=grad_out.device).expand_as(argmax)
            grad = grad_out.new_zeros(ctx.num_pixels, channels).index_put(
                (argmax[won], cols[won]), grad_out[won]
            )
        return grad, None, None, None


class _GatherFromVoxels(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, voxel_feats: torch.Tensor, voxel_index: torch.Tensor):
        ctx.save_for_backward(voxel_index)
        ctx.num_voxels = voxel_feats.shape[0]
        return kernel("gather_from_voxels", voxel_feats.device)(voxel_feats.contiguous(), voxel_index)

    @staticmethod
    def backward(ctx: Any, grad_out: torch.Tensor):
        if not ctx.needs_input_grad[0]:
            return None, None
        (voxel_index,) = ctx.saved_tensors
        grad, _ = _ScatterToVoxels.apply(grad_out.contiguous(), voxel_index, ctx.num_voxels, "sum")
        return grad, None


def scatter_to_voxels(
    pixel_feats: torch.Tensor, voxel_index: torch.Tensor, num_voxels: int, reduce: str = "mean"
) -> VoxelFeatures:
    """Reduce pixel features into their voxels.

    Args:
        pixel_feats: ``[P, C]`` floating point features (float32/64, float16, bfloat16; accumulated in
            at least float32).
        voxel_index: ``[P]`` integer voxel row of each pixel in ``[0, num_voxels)``, or -1 to skip it
            (as returned by :func:`pixvox.ops.pixel_to_voxel`).
        num_voxels: V, number of voxels of the output.
        reduce: ``"mean"``, ``"sum"`` or ``"max"`` (NaN propagates; the first maximum wins ties).

    Returns:
        :class:`VoxelFeatures`: ``features`` ``[V, C]`` (0 where a voxel has no pixel) and ``counts``
        ``[V]`` int64. Differentiable w.r.t. ``pixel_feats``.

    Raises:
        IndexError: an index outside ``[-1, num_voxels)``.
    """
    if reduce not in REDUCTIONS:
        raise ValueError(f"reduce must be one of {sorted(REDUCTIONS)}, got {reduce!r}")
    if not isinstance(pixel_feats, torch.Tensor) or pixel_feats.ndim != 2:
        shape = (
            tuple(pixel_feats.shape) if isinstance(pixel_feats, torch.Tensor) else type(pixel_feats).__name__
        )
        raise ValueError(f"pixel_feats must be a [P, C] tensor, got {shape}")
    if not pixel_feats.is_floating_point():
        raise TypeError(f"pixel_feats must be floating point, got {pixel_feats.dtype}")
    if isinstance(num_voxels, bool) or int(num_voxels) != num_voxels or num_voxels < 0:
        raise ValueError(f"num_voxels must be an integer >= 0, got {num_voxels!r}")
    index = _check_index(voxel_index, pixel_feats.shape[0], pixel_feats.device)
    features, counts = _ScatterToVoxels.apply(pixel_feats, index, int(num_voxels), reduce)
    return VoxelFeatures(features=features, counts=counts)


def gather_from_voxels(voxel_feats: torch.Tensor, voxel_index: torch.Tensor) -> torch.Tensor:
    """Copy each pixel's voxel features, ``out[p] = voxel_feats[voxel_index[p]]`` (0 where it is -1).

    Args:
        voxel_feats: ``[V, C]`` features of any dtype (differentiable when floating point).
        voxel_index: ``[P]`` integer voxel rows in ``[-1, V)``.

    Returns:
        ``[P, C]`` tensor of ``voxel_feats``' dtype.

    Raises:
        IndexError: an index outside ``[-1, V)``.
    """
    if not isinstance(voxel_feats, torch.Tensor) or voxel_feats.ndim != 2:
        shape = (
            tuple(voxel_feats.shape) if isinstance(voxel_feats, torch.Tensor) else type(voxel_feats).__name__
        )
        raise ValueError(f"voxel_feats must be a [V, C] tensor, got {shape}")
    index = _check_index(voxel_index, None, voxel_feats.device)
    return _GatherFromVoxels.apply(voxel_feats, index)
