"""DINOv2 ViT-S/14 and ViT-B/14: the official checkpoint layout, loading from a user path only, clear
errors for a missing or foreign file, and a float64 reference of the forward pass."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

from pixvox.models.teacher import build_teacher, build_teacher_backbone
from pixvox.models.teacher.dinov2 import DINOV2_VARIANTS, dinov2_vit
from pixvox.models.teacher.weights import TeacherWeightsError

FIXTURES = Path(__file__).parent / "fixtures"
VARIANTS = list(DINOV2_VARIANTS)


def official_layout(name: str) -> list[tuple[str, tuple[int, ...]]]:
    """(key, shape) of the official checkpoint, in order, from the hand-written fixture."""
    rows = []
    for line in (FIXTURES / f"{name}_keys.tsv").read_text().splitlines():
        if line and not line.startswith("#"):
            key, shape = line.split("\t")
            rows.append((key, tuple(int(s) for s in shape.split(","))))
    return rows


def fake_checkpoint(name: str, path: Path, seed: int) -> dict[str, torch.Tensor]:
    """A file with the official layout and seeded random values (the real one is not downloaded here)."""
    g = torch.Generator().manual_seed(seed)
    state = {k: torch.randn(shape, generator=g) * 0.05 for k, shape in official_layout(name)}
    for k in state:
        if k.endswith("gamma"):
            state[k] = state[k].abs() + 0.5  # LayerScale, far from 0 so every block matters
    torch.save(state, path)
    return state


@pytest.mark.parametrize("name", VARIANTS)
def test_state_dict_keys_and_shapes_equal_the_official_checkpoint(name):
    model = dinov2_vit(name)
    assert [(k, tuple(v.shape)) for k, v in model.state_dict().items()] == official_layout(name)


@pytest.mark.parametrize("name", VARIANTS)
def test_the_official_file_loads_from_a_path_or_its_folder(name, tmp_path, seed):
    path = tmp_path / f"{name}_pretrain.pth"
    state = fake_checkpoint(name, path, seed)
    for weights in (path, tmp_path):
        teacher = build_teacher(name, weights, out_dim=8, fpn_channels=8, projection_channels=8)
        assert teacher.weights_source == str(path)
        for k, v in teacher.backbone.state_dict().items():
            assert torch.equal(v, state[k]), k
        assert not any(p.requires_grad for p in teacher.backbone.parameters())
    emb = teacher(torch.rand(1, 3, 45, 61))  # patch features lifted to pixels like the CNN stages
    assert emb.shape == (1, 8, 45, 61) and torch.allclose(emb.norm(dim=1), torch.ones(1, 45, 61), atol=1e-5)


def test_missing_wrong_or_unset_file_is_a_clear_error(tmp_path, seed):
    with pytest.raises(TeacherWeightsError, match="teacher.weights=/path/to/dinov2_vits14_pretrain.pth"):
        build_teacher_backbone("dinov2_vits14", "imagenet")
    with pytest.raises(TeacherWeightsError, match="downloads nothing"):
        build_teacher_backbone("dinov2_vitb14", "https://dl.fbaipublicfiles.com/dinov2/x.pth")
    missing = tmp_path / "nowhere" / "dinov2_vits14_pretrain.pth"
    with pytest.raises(TeacherWeightsError, match=f"{missing} do not exist"):
        build_teacher_backbone("dinov2_vits14", missing)
    with pytest.raises(TeacherWeightsError, match="holds none of.*dinov2_vitb14_pretrain.pth"):
        build_teacher_backbone("dinov2_vitb14", tmp_path)
    small = tmp_path / "small.pth"
    fake_checkpoint("dinov2_vits14", small, seed)
    with pytest.raises(TeacherWeightsError, match=f"{small} does not fit dinov2_vitb14.*official DINOv2"):
        build_teacher_backbone("dinov2_vitb14", small)
    broken = tmp_path / "broken.pth"
    broken.write_bytes(b"not a checkpoint")
    with pytest.raises(TeacherWeightsError, match=f"cannot read teacher weights {broken}"):
        build_teacher_backbone("dinov2_vits14", broken)


def _reference_tokens(state: dict[str, torch.Tensor], x: torch.Tensor, heads: int) -> torch.Tensor:
    """Float64 ViT forward written from the equations: patches as matrix products, explicit softmax."""
    s = {k: v.double() for k, v in state.items()}
    x = x.double()
    B, _, H, W = x.shape
    h, w = H // 14, W // 14
    patches = x.unfold(2, 14, 14).unfold(3, 14, 14)  # [B, 3, h, w, 14, 14]
    patches = patches.permute(0, 2, 3, 1, 4, 5).reshape(B, h * w, 3 * 14 * 14)
    t = patches @ s["patch_embed.proj.weight"].reshape(-1, 3 * 14 * 14).T + s["patch_embed.proj.bias"]
    t = torch.cat([s["cls_token"].expand(B, 1, -1), t], 1)
    grid = s["pos_embed"][:, 1:].reshape(1, 37, 37, -1).permute(0, 3, 1, 2)
    grid = torch.nn.functional.interpolate(
        grid, scale_factor=((h + 0.1) / 37, (w + 0.1) / 37), mode="bicubic", align_corners=False
    )
    t = t + torch.cat([s["pos_embed"][:, :1], grid.flatten(2).transpose(1, 2)], 1)
    D = t.shape[-1]
    d = D // heads

    def ln(z, p):
        mu, var = z.mean(-1, keepdim=True), z.var(-1, unbiased=False, keepdim=True)
        return (z - mu) / torch.sqrt(var + 1e-6) * s[p + ".weight"] + s[p + ".bias"]

    n_blocks = len({k.split(".")[1] for k in s if k.startswith("blocks.")})
    for i in range(n_blocks):
        b = f"blocks.{i}."
        z = ln(t, b + "norm1")
        qkv = z @ s[b + "attn.qkv.weight"].T + s[b + "attn.qkv.bias"]
        out = torch.zeros_like(z)
        for head in range(heads):
            q, k, v = (qkv[..., j * D + head * d : j * D + (head + 1) * d] for j in range(3))
            att = torch.softmax(q @ k.transpose(1, 2) / math.sqrt(d), dim=-1)
            out[..., head * d : (head + 1) * d] = att @ v
        t = t + s[b + "ls1.gamma"] * (out @ s[b + "attn.proj.weight"].T + s[b + "attn.proj.bias"])
        z = ln(t, b + "norm2")
        hidden = torch.nn.functional.gelu(z @ s[b + "mlp.fc1.weight"].T + s[b + "mlp.fc1.bias"])
        t = t + s[b + "ls2.gamma"] * (hidden @ s[b + "mlp.fc2.weight"].T + s[b + "mlp.fc2.bias"])
    return ln(t, "norm")


def test_forward_matches_a_float64_reference_and_lays_tokens_on_16_pixel_cells(tmp_path, seed):
    name = "dinov2_vits14"
    state = fake_checkpoint(name, tmp_path / "w.pth", seed)
    model, _ = build_teacher_backbone(name, tmp_path / "w.pth")
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(2, 3, 5 * 14, 7 * 14, generator=g)
    ref = _reference_tokens(state, x, heads=DINOV2_VARIANTS[name][2])
    with torch.no_grad():
        got, h, w = model.tokens(x)
        cls = model(x)
    assert (h, w) == (5, 7)
    torch.testing.assert_close(got.double(), ref, rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(cls.double(), ref[:, 0], rtol=1e-4, atol=1e-4)
    # as a teacher: a 16-pixel cell per token, the image padded to whole cells (61x99 → 4x7 tokens)
    img = torch.rand(1, 3, 61, 99, generator=g)
    with torch.no_grad():
        (stage,) = model.forward_stages(img)
        padded = torch.nn.functional.pad(img, (0, 7 * 16 - 99, 0, 4 * 16 - 61))
        resized = torch.nn.functional.interpolate(
            padded, size=(4 * 14, 7 * 14), mode="bilinear", align_corners=False, antialias=True
        )
        expected = model.tokens(resized)[0][:, 1:].transpose(1, 2).reshape(1, -1, 4, 7)
    assert stage.shape == (1, 384, 4, 7) and model.stage_strides == (16,)
    torch.testing.assert_close(stage, expected)
