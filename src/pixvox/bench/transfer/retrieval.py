"""Voxel→pixel retrieval on the held-out tail of the sequences (never seen in pretraining).

For every held-out fusion (all of them, in batches of ``train.batch_size``, without augmentation,
with fixed pair seeds) the PPKT term samples its matched voxel/pixel pairs and scores top-1: a
voxel's feature retrieves its own pixel's among all the pixels of the batch's pairs. Chance is
``1 / pairs`` of the batch. Both are averaged over batches weighted by their pairs.

The held-out fusions are single-frame ones for every arm, so an arm pretrained on F-frame fusions
(``data.frames_per_sample`` > 1) is scored on the same pixels as the others. With several terms
(e.g. ``ppkt`` + ``masked_2d``) only the PPKT term's figures count.
"""

from __future__ import annotations

import warnings
from dataclasses import replace
from pathlib import Path

import torch

from pixvox.config import PretrainConfig
from pixvox.datasets.fusion import FusionPretrainDataset, collate_pretrain
from pixvox.engine.checkpoint import load_checkpoint
from pixvox.engine.sampler import sample_seed
from pixvox.errors import CheckpointMismatchError
from pixvox.finetune.model import resolve_pretrain_checkpoint
from pixvox.objectives import dataset_inputs, dataset_options
from pixvox.pretrain.model import PretrainNet
from pixvox.pretrain.run import EVAL_EPOCH
from pixvox.pretrain.step import PretrainStep

TERM = "ppkt"


def has_retrieval(cfg: PretrainConfig) -> bool:
    """Whether the arm has a teacher to retrieve pixels of (a PPKT term)."""
    return any(t.name == TERM for t in cfg.loss.terms)


def load_pretrain_net(cfg: PretrainConfig, run_dir: Path) -> PretrainNet:
    """The run's student, FPN and projection from its newest checkpoint; the frozen teacher backbone
    from its weights (``none``: rebuilt from ``experiment.seed`` exactly as the job built it)."""
    torch.manual_seed(cfg.experiment.seed)
    with warnings.catch_warnings():
        if cfg.teacher.weights == "none":
            warnings.filterwarnings("ignore", message=".*RANDOM weights.*", category=UserWarning)
        net = PretrainNet(cfg)
    path = resolve_pretrain_checkpoint(run_dir)
    missing, unexpected = net.load_state_dict(load_checkpoint(path)["model"], strict=False)
    frozen = {n for n, p in net.named_parameters() if not p.requires_grad}
    missing = [k for k in missing if k not in frozen and ".backbone." not in f".{k}"]
    if missing or unexpected:
        raise CheckpointMismatchError(
            f"{path}: does not fit the arm's network: missing {missing[:5]}, unexpected {unexpected[:5]}"
        )
    return net.eval()


@torch.no_grad()
def heldout_retrieval(cfg: PretrainConfig, run_dir: Path, heldout_root: Path) -> dict[str, float]:
    """``{"top1", "chance", "pairs", "samples"}`` of the run on every held-out fusion."""
    if not has_retrieval(cfg):
        raise ValueError(f"{run_dir}: the arm has no {TERM} term, so no voxel→pixel retrieval")
    net = load_pretrain_net(cfg, run_dir)
    step = PretrainStep(net, cfg, torch.device("cpu"))
    data = FusionPretrainDataset(
        heldout_root,
        replace(cfg.data, frames_per_sample=None),  # the held-out index's own F (single frames)
        augment=False,
        inputs=dataset_inputs(cfg),
        input_kind=cfg.student.input,
        **dataset_options(cfg),
    )
    n, bs = len(data), cfg.train.batch_size
    hits = chance = pairs = 0.0
    for start in range(0, n, bs):
        items = [
            data[(i, sample_seed(cfg.experiment.seed, EVAL_EPOCH, i))]
            for i in range(start, min(n, start + bs))
        ]
        _, m, _ = step.losses(collate_pretrain(items), gather=False)
        k = float(m[f"pairs_{TERM}"])
        hits += m[f"acc_{TERM}"] * k
        chance += m[f"chance_{TERM}"] * k
        pairs += k
    return {"top1": hits / pairs, "chance": chance / pairs, "pairs": int(pairs), "samples": n}
