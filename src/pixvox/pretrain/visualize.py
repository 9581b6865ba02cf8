"""The picture that shows whether the transfer worked: for one frame, the color image, the teacher's
pixel features and the student's voxel features seen from the same camera, both mapped to RGB with
the same 3-component PCA basis (fitted on the teacher's features)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from pixvox.config import PretrainConfig, from_dict
from pixvox.datasets.fusion import FusionPretrainDataset, collate_pretrain
from pixvox.engine.checkpoint import load_checkpoint
from pixvox.objectives.ppkt import match_pixels
from pixvox.pretrain.model import PretrainNet


def pca_basis(x: torch.Tensor, k: int = 3) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean ``[D]`` and top-``k`` principal directions ``[D, k]`` of rows ``x`` ``[N, D]``."""
    mean = x.mean(0)
    _, _, v = torch.linalg.svd(x - mean, full_matrices=False)
    return mean, v[:k].T


def features_for_frame(checkpoint: str | Path, sample: int, frame: int = 0, data_root: str | None = None):
    """Teacher ``[H, W, D]`` and student ``[H, W, D]`` features (NaN where no voxel) and the image."""
    state = load_checkpoint(checkpoint)
    cfg = from_dict(PretrainConfig, state["config"], source=str(checkpoint))
    if cfg.teacher.weights == "none":
        raise ValueError(f"{checkpoint}: trained with teacher.weights=none; nothing meaningful to show")
    net = PretrainNet(cfg)
    missing, unexpected = net.load_state_dict(state["model"], strict=False)
    if unexpected or any(".backbone." not in f".{k}" for k in missing):
        raise RuntimeError(
            f"{checkpoint}: does not match the model in its own config ({missing[:3]}, {unexpected[:3]})"
        )
    net.eval()
    ds = FusionPretrainDataset(
        data_root or cfg.data.root, cfg.data, augment=False, input_kind=cfg.student.input
    )
    if not 0 <= sample < len(ds):
        raise IndexError(f"sample {sample} out of range: the dataset has {len(ds)} samples")
    batch = collate_pretrain([ds[(sample, 0)]])
    if not 0 <= frame < batch["images"].shape[0]:
        raise IndexError(f"frame {frame} out of range: sample {sample} has {batch['images'].shape[0]} frames")
    with torch.no_grad():
        out = net(batch)
        m = match_pixels(batch, cfg.data.voxel_size, cfg.data.depth_min, cfg.data.depth_max)
    teacher = out["pixel_feats"][frame].permute(1, 2, 0)
    H, W, D = teacher.shape
    student = torch.full((H, W, D), float("nan"))
    sel = m["frame"] == frame
    student[m["v"][sel], m["u"][sel]] = torch.nn.functional.normalize(
        out["voxel_feats"][m["voxel"][sel]], dim=1
    )
    image = batch["images"][frame].permute(1, 2, 0)
    return image, teacher, student


def render(
    checkpoint: str | Path, sample: int, out_png: str | Path, frame: int = 0, data_root: str | None = None
) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    image, teacher, student = features_for_frame(checkpoint, sample, frame, data_root)
    H, W, D = teacher.shape
    mean, basis = pca_basis(teacher.reshape(-1, D))
    t = (teacher.reshape(-1, D) - mean) @ basis
    lo, hi = torch.quantile(t, 0.01, dim=0), torch.quantile(t, 0.99, dim=0)

    def to_rgb(p: torch.Tensor) -> np.ndarray:
        return ((p - lo) / (hi - lo + 1e-8)).clamp(0, 1).reshape(H, W, 3).numpy()

    valid = ~torch.isnan(student[..., 0])
    s_rgb = np.zeros((H, W, 3))
    if valid.any():
        proj = (student[valid] - mean) @ basis
        s_rgb[valid.numpy()] = ((proj - lo) / (hi - lo + 1e-8)).clamp(0, 1).numpy()
    fig, ax = plt.subplots(1, 3, figsize=(12, 3.4))
    for a, img, title in zip(
        ax,
        [image.numpy(), to_rgb(t), s_rgb],
        ["color", "teacher pixel features (PCA)", "student voxel features (same PCA)"],
    ):
        a.imshow(img)
        a.set_title(title)
        a.axis("off")
    fig.suptitle(f"{Path(checkpoint).name} | sample {sample} frame {frame} | black: no voxel")
    fig.tight_layout()
    out_png = Path(out_png)
    out_png.parent.mkdir(parents=True, exist_ok=True)
    tmp = out_png.with_name(f".{out_png.name}.tmp.png")
    fig.savefig(tmp, dpi=110)
    plt.close(fig)
    tmp.replace(out_png)
    return out_png
