"""tools/visualize_features: PCA basis against NumPy, and a rendered PNG from a real checkpoint."""

from __future__ import annotations

import numpy as np
import torch

from pixvox.pretrain.run import main
from pixvox.pretrain.visualize import features_for_frame, pca_basis, render

from .conftest import REPO, tiny_overrides


def test_pca_basis_matches_numpy(seed):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((200, 6)) @ rng.standard_normal((6, 6))
    mean, basis = pca_basis(torch.from_numpy(x))
    evals, evecs = np.linalg.eigh(np.cov(x.T))
    top = evecs[:, ::-1][:, :3]
    np.testing.assert_allclose(mean.numpy(), x.mean(0))
    np.testing.assert_allclose(np.abs(basis.numpy().T @ top), np.eye(3), atol=1e-8)


def test_render_from_checkpoint(tiny_fusions, tmp_path):
    main(
        [
            str(REPO / "configs/pretrain/quickstart.yaml"),
            *tiny_overrides(tiny_fusions, tmp_path, "vis"),
            "--resume",
            "none",
        ]
    )
    ckpt = tmp_path / "vis/checkpoints/step_00000004.pt"
    image, teacher, student = features_for_frame(ckpt, sample=1)
    assert image.shape[:2] == teacher.shape[:2] == student.shape[:2] == (48, 64)
    valid = ~torch.isnan(student[..., 0])
    assert valid.float().mean() > 0.3  # most pixels land in a voxel
    torch.testing.assert_close(student[valid].norm(dim=1), torch.ones(int(valid.sum())))
    out = render(ckpt, 1, tmp_path / "vis.png")
    assert out.stat().st_size > 5000
