"""The frozen 2D teacher: normalization → frozen backbone → FPN → upsampling projection → 2D head.

Only the FPN, the projection and the head learn; the backbone keeps its pretrained weights, its
BatchNorm statistics (always eval mode) and computes no gradients. ``head="linear"`` keeps only a
1×1 projection of one frozen stage (the deepest unless ``linear_stage`` says otherwise), upsampled
bilinearly to the image (as SLidR does): the 2D side then cannot learn features of its own, only a
linear map of the teacher's.
"""

from __future__ import annotations

from collections.abc import Iterator

import torch
import torch.nn.functional as F
from torch import nn

from pixvox.models.heads import ProjectionHead2D, l2_normalize
from pixvox.models.teacher.fpn import FeaturePyramid, UpsamplingProjection

__all__ = ["HEADS", "FrozenTeacher"]

#: 2D heads on the frozen backbone: ``fpn`` (trainable FPN + upsampling projection + 1×1 head) or
#: ``linear`` (one 1×1 projection of one frozen stage, bilinear upsampling)
HEADS = ("fpn", "linear")


class FrozenTeacher(nn.Module):
    """Pixel embeddings from a frozen ImageNet backbone.

    Args:
        backbone: a module with ``forward_stages`` (C2..C5), ``forward`` (logits), ``stage_channels``,
            ``stage_strides``, ``input_mean`` and ``input_std`` (see ``resnet.py``,
            ``efficientnet_lite.py``), already holding its pretrained weights.
        name: backbone name, for messages.
        out_dim: embedding width D of the output.
        fpn_channels: width of the feature pyramid.
        projection_channels: width of the full-resolution features before the head.
        head: ``"fpn"`` or ``"linear"`` (see the module doc; ``fpn_channels`` and
            ``projection_channels`` are unused with ``linear``).
        linear_stage: the stage the ``linear`` head projects, an index into ``stage_channels``
            (-1: the deepest; for EfficientNet-Lite and ResNet 0..3 are strides 4, 8, 16, 32).
            Only with ``head="linear"``.
        weights_source: where the backbone weights came from (kept for logs and checkpoints).

    ``forward(images)``: ``[B, 3, H, W]`` float RGB in [0, 1] → ``[B, out_dim, H, W]``, L2-normalized
    along dim 1. State-dict prefixes: ``backbone.*`` (frozen), ``fpn.*``, ``projection.*``, ``head.*``.
    """

    def __init__(
        self,
        backbone: nn.Module,
        name: str,
        out_dim: int = 64,
        fpn_channels: int = 128,
        projection_channels: int = 64,
        weights_source: str = "unknown",
        head: str = "fpn",
        linear_stage: int = -1,
    ):
        super().__init__()
        self.backbone = backbone
        self.name = name
        self.weights_source = weights_source
        self.backbone.requires_grad_(False)
        self.backbone.eval()
        self.register_buffer(
            "input_mean", torch.tensor(backbone.input_mean).view(1, 3, 1, 1), persistent=False
        )
        self.register_buffer("input_std", torch.tensor(backbone.input_std).view(1, 3, 1, 1), persistent=False)
        if head not in HEADS:
            raise ValueError(f"teacher head {head!r}: use one of {HEADS}")
        self.head_kind = head
        stages = len(backbone.stage_channels)
        if head != "linear" and linear_stage != -1:
            raise ValueError(f"teacher linear_stage {linear_stage}: only the linear head picks a stage")
        if not -stages <= linear_stage < stages:
            raise ValueError(
                f"teacher linear_stage {linear_stage}: {name} has stages 0..{stages - 1} "
                f"(strides {tuple(backbone.stage_strides)})"
            )
        self.linear_stage = linear_stage % stages
        self.fpn: nn.Module | None = None
        self.projection: nn.Module | None = None
        if head == "fpn":
            self.fpn = FeaturePyramid(backbone.stage_channels, fpn_channels)
            self.projection = UpsamplingProjection(
                fpn_channels, projection_channels, scale=backbone.stage_strides[0]
            )
            self.head = ProjectionHead2D(projection_channels, out_dim)
        else:  # normalized after the upsampling, so every pixel's embedding has unit length
            self.head = ProjectionHead2D(backbone.stage_channels[self.linear_stage], out_dim, normalize=False)
        self.out_dim = out_dim

    def train(self, mode: bool = True) -> FrozenTeacher:
        """Set FPN/projection/head to ``mode``; the backbone stays in eval mode (frozen BN statistics)."""
        super().train(mode)
        self.backbone.eval()
        return self

    def trainable_parameters(self) -> Iterator[nn.Parameter]:
        """Parameters of the FPN, the upsampling projection and the 2D head (never the backbone)."""
        for module in (self.fpn, self.projection, self.head):
            if module is not None:
                yield from module.parameters()

    def normalize(self, images: torch.Tensor) -> torch.Tensor:
        """Validate ``[B, 3, H, W]`` RGB in [0, 1] and apply the backbone's training normalization."""
        if images.ndim != 4 or images.shape[1] != 3:
            raise ValueError(f"teacher expects images [B, 3, H, W], got {tuple(images.shape)}")
        if not images.is_floating_point():
            raise TypeError(
                f"teacher expects float RGB in [0, 1], got {images.dtype}; convert with .float() / 255"
            )
        if images.numel() == 0:
            raise ValueError(f"teacher got an empty image batch {tuple(images.shape)}")
        if not torch.isfinite(images).all():
            raise ValueError("teacher input images contain NaN or inf")
        if images.max() > 2.0:  # lenient: color jitter may overshoot 1 a little, 0..255 input may not
            raise ValueError(
                f"teacher input images reach {images.max().item():.1f}; they look like 0..255 values, "
                "pass float RGB in [0, 1] (divide by 255)"
            )
        return (images - self.input_mean) / self.input_std

    def backbone_stages(self, images: torch.Tensor) -> list[torch.Tensor]:
        """C2..C5 of the frozen backbone for ``[B, 3, H, W]`` RGB in [0, 1] (no autograd graph)."""
        x = self.normalize(images)
        with torch.no_grad():
            return self.backbone.forward_stages(x)

    @torch.no_grad()
    def classify(self, images: torch.Tensor) -> torch.Tensor:
        """ImageNet logits ``[B, 1000]`` of the frozen backbone for RGB in [0, 1] (e.g. 224x224 crops)."""
        return self.backbone(self.normalize(images))

    def forward(self, images: torch.Tensor, stages: list[torch.Tensor] | None = None) -> torch.Tensor:
        """``stages``: :meth:`backbone_stages` of ``images`` where the caller already has them."""
        H, W = images.shape[-2:]
        if stages is None:
            stages = self.backbone_stages(images)
        if self.fpn is None or self.projection is None:  # head="linear"
            y = F.interpolate(
                self.head(stages[self.linear_stage]), size=(H, W), mode="bilinear", align_corners=False
            )
            return l2_normalize(y, dim=1)
        return self.head(self.projection(self.fpn(stages), (H, W)))

    def extra_repr(self) -> str:
        return f"name={self.name!r}, out_dim={self.out_dim}, weights={self.weights_source!r}"
