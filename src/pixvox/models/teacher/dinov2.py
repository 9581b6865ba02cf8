"""DINOv2 ViT-S/14 and ViT-B/14 (Oquab et al. 2023) as frozen teachers, loading the official files.

The modules' state-dict names and shapes are those of the official checkpoints
(``dinov2_vits14_pretrain.pth``, ``dinov2_vitb14_pretrain.pth``: ``cls_token``, ``pos_embed`` for a
37×37 grid (518-pixel training images), ``mask_token``, ``patch_embed.proj``, ``blocks.N.{norm1,
attn.qkv, attn.proj, ls1.gamma, norm2, mlp.fc1, mlp.fc2, ls2.gamma}``, ``norm``), so a file loads
strictly; nothing is downloaded (pixvox.models.teacher.weights asks for the file's path).

Network: pre-norm transformer blocks with LayerScale, LayerNorm eps 1e-6, GELU MLP of 4× width,
biased qkv; the position embeddings are resized bicubically to the image's patch grid with the
official +0.1 offset in the scale factor. Inputs use the ImageNet mean and std.

As a teacher (:meth:`DinoViT.forward_stages`): the normalized image is padded at the bottom/right to
a multiple of 16 pixels, then resized by exactly 14/16, so that patch token ``(i, j)`` covers original
pixels ``16i … 16i+15`` × ``16j … 16j+15``; the one stage returned is the last block's patch tokens
after the final LayerNorm, ``[B, D, ceil(H/16), ceil(W/16)]`` at stride 16. The FPN and the learned
sub-pixel upsampling of :class:`pixvox.models.teacher.FrozenTeacher` lift it to pixel resolution as
they do the CNN stages.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["DINOV2_VARIANTS", "DinoViT", "dinov2_vit"]

#: name → (embedding width, depth, heads); patch size 14, MLP ratio 4 for both
DINOV2_VARIANTS: dict[str, tuple[int, int, int]] = {
    "dinov2_vits14": (384, 12, 6),
    "dinov2_vitb14": (768, 12, 12),
}
PATCH = 14
TRAIN_GRID = 37  # 518 / 14: the grid of the checkpoints' position embeddings
STRIDE = 16  # original pixels per patch token once the image is resized by 14/16


class PatchEmbed(nn.Module):
    """Non-overlapping 14×14 patches → tokens: ``proj`` (Conv2d, the official name)."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.proj = nn.Conv2d(3, dim, PATCH, stride=PATCH)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(x).flatten(2).transpose(1, 2)  # [B, h*w, D]


class Attention(nn.Module):
    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, N, D = x.shape
        q, k, v = self.qkv(x).view(B, N, 3, self.heads, D // self.heads).permute(2, 0, 3, 1, 4)
        out = F.scaled_dot_product_attention(q, k, v)  # softmax(q k^T / sqrt(d)) v per head
        return self.proj(out.transpose(1, 2).reshape(B, N, D))


class LayerScale(nn.Module):
    def __init__(self, dim: int) -> None:
        super().__init__()
        self.gamma = nn.Parameter(torch.ones(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.gamma


class Mlp(nn.Module):
    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(F.gelu(self.fc1(x)))


class Block(nn.Module):
    """Pre-norm residual block: ``x + ls1(attn(norm1(x)))``, then ``x + ls2(mlp(norm2(x)))``."""

    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=1e-6)
        self.attn = Attention(dim, heads)
        self.ls1 = LayerScale(dim)
        self.norm2 = nn.LayerNorm(dim, eps=1e-6)
        self.mlp = Mlp(dim, 4 * dim)
        self.ls2 = LayerScale(dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.ls1(self.attn(self.norm1(x)))
        return x + self.ls2(self.mlp(self.norm2(x)))


class DinoViT(nn.Module):
    """A DINOv2 ViT/14 backbone (random weights until a checkpoint is loaded).

    ``forward_stages(x)``: ``[B, 3, H, W]`` ImageNet-normalized → ``[tokens [B, D, ceil(H/16),
    ceil(W/16)]]`` (``stage_channels = (D,)``, ``stage_strides = (16,)``; see the module docstring).
    ``forward(x)``: the normalized class token ``[B, D]`` (DINOv2 has no classifier).
    """

    input_mean = (0.485, 0.456, 0.406)
    input_std = (0.229, 0.224, 0.225)
    stage_strides = (STRIDE,)

    def __init__(self, dim: int, depth: int, heads: int) -> None:
        super().__init__()
        self.cls_token = nn.Parameter(torch.zeros(1, 1, dim))
        self.pos_embed = nn.Parameter(torch.zeros(1, 1 + TRAIN_GRID**2, dim))
        self.mask_token = nn.Parameter(torch.zeros(1, dim))  # used in DINOv2's training only; kept to load
        self.patch_embed = PatchEmbed(dim)
        self.blocks = nn.ModuleList(Block(dim, heads) for _ in range(depth))
        self.norm = nn.LayerNorm(dim, eps=1e-6)
        self.stage_channels = (dim,)
        nn.init.trunc_normal_(self.pos_embed, std=0.02)

    def position_embedding(self, h: int, w: int) -> torch.Tensor:
        """``[1, 1 + h*w, D]``: the class position and the 37×37 grid resized to ``h × w`` (bicubic)."""
        pos = self.pos_embed.float()
        if h == w == TRAIN_GRID:
            return pos
        grid = pos[:, 1:].reshape(1, TRAIN_GRID, TRAIN_GRID, -1).permute(0, 3, 1, 2)
        # the official scale factors carry +0.1 (a float-rounding guard of DINO's); the output size is h x w
        scale = ((h + 0.1) / TRAIN_GRID, (w + 0.1) / TRAIN_GRID)
        grid = F.interpolate(grid, scale_factor=scale, mode="bicubic", align_corners=False)
        if grid.shape[-2:] != (h, w):
            raise RuntimeError(f"position grid resized to {tuple(grid.shape[-2:])}, expected {(h, w)}")
        return torch.cat([pos[:, :1], grid.flatten(2).transpose(1, 2)], 1)

    def tokens(self, x: torch.Tensor) -> tuple[torch.Tensor, int, int]:
        """Normalized final tokens ``[B, 1 + h*w, D]`` of an image whose sides are multiples of 14."""
        h, w = x.shape[-2] // PATCH, x.shape[-1] // PATCH
        t = self.patch_embed(x)
        t = torch.cat([self.cls_token.expand(t.shape[0], -1, -1), t], 1)
        t = t + self.position_embedding(h, w).to(t.dtype)
        for block in self.blocks:
            t = block(t)
        return self.norm(t), h, w

    def forward_stages(self, x: torch.Tensor) -> list[torch.Tensor]:
        H, W = x.shape[-2:]
        gh, gw = math.ceil(H / STRIDE), math.ceil(W / STRIDE)
        x = F.pad(x, (0, gw * STRIDE - W, 0, gh * STRIDE - H))  # 0 = the mean colour after normalizing
        x = F.interpolate(
            x, size=(gh * PATCH, gw * PATCH), mode="bilinear", align_corners=False, antialias=True
        )
        t, h, w = self.tokens(x)
        return [t[:, 1:].transpose(1, 2).reshape(t.shape[0], -1, h, w)]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        H, W = x.shape[-2:]
        if H % PATCH or W % PATCH:
            raise ValueError(f"DINOv2 classifies images whose sides are multiples of {PATCH}, got {H}x{W}")
        return self.tokens(x)[0][:, 0]


def dinov2_vit(name: str) -> DinoViT:
    """``dinov2_vits14`` or ``dinov2_vitb14`` with random weights."""
    if name not in DINOV2_VARIANTS:
        raise ValueError(f"unknown DINOv2 variant {name!r}; choose one of {list(DINOV2_VARIANTS)}")
    return DinoViT(*DINOV2_VARIANTS[name])
