"""The ``masked_2d`` objective: masked 2D-feature modeling on sparse voxels (I2P-MAE / ACT style).

One step, for a batch of fusions with their frames:

1. **Patches.** The student's (augmented) voxels are grouped into cubes of ``block_size`` metres
   (``k = block_size / voxel_size`` voxels per edge, in the student's voxel grid; patch of voxel ``c``:
   ``floor(c / k)``, per sample).
2. **Targets.** Each matched pixel (the PPKT matching: depth back-projected with its own frame's
   camera-to-world pose into the world-frame voxels, then followed to the augmented voxel) takes the
   feature of its cell in one stage of the *frozen* teacher backbone (stride ``s``: pixels
   ``s*i … s*i+s-1`` form cell ``i``, as the CNN teachers' upsampling lays them out). A voxel's
   feature is the mean over its pixels; a patch's target is the mean over its voxels that have pixels
   ("voxel-averaged": each voxel counts once, however many pixels it covers). Patches without a
   matched pixel have no target: they stay visible and are left out of the loss.
3. **Saliency and masking.** Saliency of a patch is the Euclidean distance of its target from the
   mean target of its sample's patches (how far the teacher sees it from the sample's average
   content). ``masking: guided`` masks the ``round(mask_ratio × n)`` *least* salient of a sample's
   ``n`` patches with a target, so the most salient ones stay visible (I2P-MAE's 2D-guided masking,
   made deterministic); ``random`` masks a uniformly random subset of the same size (the baseline).
4. **Student and decoder.** The student sees every voxel; the input features of masked voxels are
   replaced by a learned mask token. Why a token rather than dropping the masked voxels: a sparse
   U-Net only produces features at its input coordinates, so predicting at dropped coordinates would
   need a coordinate-generating decoder; with the token the coordinate map, and the occupancy pattern
   every convolution sees, stay those of fine-tuning (no gap between pretraining and fine-tuning
   input), and one student pass serves all patches (as SimMIM and MSC do). The geometry of masked
   patches stays visible; what is hidden is their appearance (colour). The student's features are
   averaged per patch and a light decoder (Linear → GELU → Linear) predicts the patch's target.
5. **Loss.** ``cosine``: ``1 − cos(prediction, target)``; ``smooth_l1``: on the layer-normalized target
   (the raw backbone scale is arbitrary). The mean over masked patches plus ``visible_weight`` × the
   mean over visible patches (I2P-MAE also reconstructs the visible tokens' 2D semantics).

Targets come from the frozen backbone under ``torch.no_grad`` and are detached: no gradient reaches
the teacher. Combined with ``ppkt`` (``loss.terms``), the student runs twice: PPKT on the clean input,
this objective on the masked one; the teacher backbone runs once and the pixel matching is shared.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from pixvox import comm
from pixvox.config.objectives import Masked2DTerm
from pixvox.config.pretrain import PretrainConfig
from pixvox.objectives.base import Objective, ObjectiveResult
from pixvox.objectives.ppkt import pixel_matches

if TYPE_CHECKING:
    from pixvox.pretrain.model import PretrainNet

MASK_STREAM = 0x68E31DA4  # random masking draws apart from the pair sampling of the same seed
ACC_PATCHES = 1024  #: masked patches per process in the retrieval accuracy (an n × n matrix)


class PatchPlan(NamedTuple):
    """The masking of one batch (all tensors on the batch's device)."""

    patch_index: torch.Tensor  #: int64 [ΣVa] patch of every student voxel
    patch_sample: torch.Tensor  #: int64 [P] sample of every patch
    targets: torch.Tensor  #: float32 [P, C] voxel-averaged teacher feature (0 where no target)
    has_target: torch.Tensor  #: bool [P]
    saliency: torch.Tensor  #: float32 [P] (-inf where no target)
    masked: torch.Tensor  #: bool [P]

    @property
    def voxel_masked(self) -> torch.Tensor:
        """bool [ΣVa]: the voxel's input is replaced by the mask token."""
        return self.masked[self.patch_index]


def block_voxels(block_size: float, voxel_size: float) -> int:
    """Voxels per patch edge; ``block_size`` (metres) must be a whole number of voxels."""
    k = round(block_size / voxel_size)
    if k < 1 or abs(k * voxel_size - block_size) > 1e-6 * max(1.0, block_size):
        raise ValueError(
            f"loss.terms masked_2d.block_size={block_size} m is not a whole number of voxels of "
            f"data.voxel_size={voxel_size} m; use e.g. block_size={max(1, k) * voxel_size:g}"
        )
    return k


def partition_patches(coords: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Cubic patches of ``k`` voxels per edge.

    ``coords``: int [N, 4] batched ``(b, x, y, z)`` voxel coordinates. Returns ``patch_index`` int64 [N]
    and ``patch_sample`` int64 [P]; patches are numbered sample by sample.
    """
    c = coords.long()
    cells = torch.cat([c[:, :1], torch.div(c[:, 1:], k, rounding_mode="floor")], 1)
    uniq, inverse = torch.unique(cells, dim=0, return_inverse=True)
    return inverse, uniq[:, 0]


def patch_targets(
    target_map: torch.Tensor,
    stride: int,
    frame: torch.Tensor,
    v: torch.Tensor,
    u: torch.Tensor,
    voxel: torch.Tensor,
    patch_index: torch.Tensor,
    num_patches: int,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Voxel-averaged teacher feature of every patch.

    Args:
        target_map: [ΣF, C, h, w] teacher features at ``stride`` pixels per cell.
        frame, v, u, voxel: int64 [M] matched pixels (frame, row, column) and their student voxel.
        patch_index: int64 [ΣVa] patch of every voxel; ``num_patches``: P.
    Returns ``(targets float32 [P, C], has_target bool [P])``. Pixels sharing a (patch, cell) are
    merged before any feature is gathered, so memory grows with those pairs, not with the pixels.
    """
    n_frames, C, h, w = target_map.shape
    device = target_map.device
    if voxel.numel() == 0:
        no_target = torch.zeros(num_patches, dtype=torch.bool, device=device)
        return torch.zeros(num_patches, C, device=device), no_target
    cell = (frame * h + (v // stride).clamp(max=h - 1)) * w + (u // stride).clamp(max=w - 1)
    n_cells = n_frames * h * w
    pixels_per_voxel = torch.bincount(voxel, minlength=patch_index.numel())
    weight = 1.0 / pixels_per_voxel[voxel].double()  # each voxel's pixels weigh 1 in total
    key, inverse = torch.unique(patch_index[voxel] * n_cells + cell, return_inverse=True)
    pair_weight = torch.zeros(key.numel(), dtype=torch.float64, device=device).index_add_(0, inverse, weight)
    flat = target_map.detach().permute(0, 2, 3, 1).reshape(n_cells, C)
    sums = torch.zeros(num_patches, C, dtype=torch.float64, device=device)
    sums.index_add_(0, key // n_cells, pair_weight[:, None] * flat[key % n_cells].double())
    voxels_seen = torch.zeros(num_patches, dtype=torch.float64, device=device)
    voxels_seen.index_add_(0, patch_index, (pixels_per_voxel > 0).double())
    has_target = voxels_seen > 0
    return (sums / voxels_seen.clamp(min=1)[:, None]).float(), has_target


def patch_saliency(
    targets: torch.Tensor, has_target: torch.Tensor, patch_sample: torch.Tensor
) -> torch.Tensor:
    """‖target − mean target of the sample's patches‖₂ per patch (float32 [P]; -inf without a target)."""
    n_samples = int(patch_sample.max()) + 1 if patch_sample.numel() else 0
    t = targets.double() * has_target[:, None]
    sums = torch.zeros(n_samples, t.shape[1], dtype=torch.float64, device=t.device).index_add_(
        0, patch_sample, t
    )
    counts = torch.zeros(n_samples, dtype=torch.float64, device=t.device)
    counts.index_add_(0, patch_sample, has_target.double())
    mean = sums / counts.clamp(min=1)[:, None]
    sal = (targets.double() - mean[patch_sample]).norm(dim=1).float()
    return torch.where(has_target, sal, torch.full_like(sal, float("-inf")))


def choose_masked(
    saliency: torch.Tensor,
    has_target: torch.Tensor,
    patch_sample: torch.Tensor,
    ratio: float,
    mode: str,
    seeds: list[int],
) -> torch.Tensor:
    """bool [P]: per sample, ``round(ratio × n)`` of its ``n`` patches with a target are masked.

    ``guided`` masks the least salient (the most salient stay visible; ties: the lower patch index
    stays visible); ``random`` draws them with ``torch.Generator`` seeded by the sample's seed.
    """
    masked = torch.zeros_like(has_target)
    for b, seed in enumerate(seeds):
        cand = ((patch_sample == b) & has_target).nonzero().squeeze(1)
        n_mask = int(round(ratio * cand.numel()))
        if n_mask == 0:
            continue
        if mode == "guided":
            order = torch.sort(saliency[cand].cpu(), descending=True, stable=True).indices
            chosen = cand[order[cand.numel() - n_mask :].to(cand.device)]
        else:
            gen = torch.Generator().manual_seed((int(seed) ^ MASK_STREAM) & 0xFFFFFFFFFFFF)
            chosen = cand[torch.randperm(cand.numel(), generator=gen)[:n_mask].to(cand.device)]
        masked[chosen] = True
    return masked


def patch_mean(feats: torch.Tensor, patch_index: torch.Tensor, num_patches: int) -> torch.Tensor:
    """Mean of ``feats`` [N, D] over each patch: [P, D] (differentiable)."""
    sums = feats.new_zeros(num_patches, feats.shape[1]).index_add(0, patch_index, feats)
    counts = torch.bincount(patch_index, minlength=num_patches).clamp(min=1).to(feats.dtype)
    return sums / counts[:, None]


def per_patch_loss(pred: torch.Tensor, target: torch.Tensor, kind: str) -> torch.Tensor:
    """float32 [P]: ``1 − cos`` or smooth-L1 (mean over channels) against the layer-normalized target."""
    pred, target = pred.float(), target.float()
    if kind == "cosine":
        return 1.0 - F.cosine_similarity(pred, target, dim=1, eps=1e-8)
    return F.smooth_l1_loss(pred, F.layer_norm(target, target.shape[1:]), reduction="none").mean(1)


class MaskedPatchHead(nn.Module):
    """The trainable parts of ``masked_2d`` inside the pretraining network: the mask token and the
    decoder. ``forward(net, batch)`` runs the student on the masked input and returns
    ``masked_2d_pred`` float [P, C] (one prediction per patch of ``batch["masked_2d"]``)."""

    def __init__(self, in_channels: int, embed_dim: int, hidden: int, target_dim: int) -> None:
        super().__init__()
        self.mask_token = nn.Parameter(torch.zeros(in_channels))  # 0 = mid grey for RGB in [-0.5, 0.5]
        self.decoder = nn.Sequential(nn.Linear(embed_dim, hidden), nn.GELU(), nn.Linear(hidden, target_dim))

    def forward(self, net: PretrainNet, batch: dict[str, Any]) -> dict[str, torch.Tensor]:
        plan: PatchPlan = batch["masked_2d"]
        feats = batch["feats"]
        masked_feats = torch.where(plan.voxel_masked[:, None], self.mask_token.to(feats.dtype), feats)
        voxel_feats = net.student_features(masked_feats, batch["coords"])
        pooled = patch_mean(voxel_feats, plan.patch_index, plan.patch_sample.numel())
        return {"masked_2d_pred": self.decoder(pooled)}


class Masked2DObjective(Objective):
    """Predict the frozen teacher's voxel-averaged features of masked voxel patches."""

    term_type = Masked2DTerm
    inputs = frozenset({"frames"})
    needs_teacher = True
    uses_student = False  # it runs the student itself, on the masked input (MaskedPatchHead)
    uses_teacher_head = False  # its targets are frozen backbone features, not the trained embeddings
    term: Masked2DTerm

    def __init__(self, term: Masked2DTerm, cfg: PretrainConfig) -> None:
        super().__init__(term, cfg)
        self.k = block_voxels(term.block_size, cfg.data.voxel_size)

    @classmethod
    def build_module(cls, term: Masked2DTerm, cfg: PretrainConfig, teacher: nn.Module | None) -> nn.Module:
        block_voxels(term.block_size, cfg.data.voxel_size)  # fail at build time, naming the key
        stages = teacher.backbone.stage_channels  # type: ignore[union-attr]
        if not -len(stages) <= term.target_stage < len(stages):
            raise ValueError(
                f"loss.terms masked_2d.target_stage={term.target_stage}: teacher {cfg.teacher.backbone} has "
                f"{len(stages)} stage(s) (channels {tuple(stages)}); use -{len(stages)}..{len(stages) - 1}"
            )
        channels = stages[term.target_stage]
        return MaskedPatchHead(cfg.student.in_channels, cfg.loss.embed_dim, term.decoder_hidden, channels)

    def prepare(self, batch: dict[str, Any], net: PretrainNet, seeds: list[int]) -> None:
        teacher = net.teacher
        assert teacher is not None  # needs_teacher
        if "teacher_stages" not in batch:
            batch["teacher_stages"] = teacher.backbone_stages(batch["images"])
        target_map = batch["teacher_stages"][self.term.target_stage].detach().float()
        stride = teacher.backbone.stage_strides[self.term.target_stage]
        mt = pixel_matches(batch, self.cfg.data)
        patch_index, patch_sample = partition_patches(batch["coords"], self.k)
        P = patch_sample.numel()
        targets, has_target = patch_targets(
            target_map, stride, mt["frame"], mt["v"], mt["u"], mt["voxel"], patch_index, P
        )
        saliency = patch_saliency(targets, has_target, patch_sample)
        masked = choose_masked(
            saliency, has_target, patch_sample, self.term.mask_ratio, self.term.masking, seeds
        )
        batch["masked_2d"] = PatchPlan(patch_index, patch_sample, targets, has_target, saliency, masked)

    def select_pairs(
        self, batch: dict[str, Any], out: dict[str, torch.Tensor], seeds: list[int]
    ) -> PatchPlan:
        return batch["masked_2d"]

    def score(self, out: dict[str, torch.Tensor], pairs: PatchPlan, gather: bool = True) -> ObjectiveResult:
        plan = pairs
        pred = out["masked_2d_pred"]
        per_patch = per_patch_loss(pred, plan.targets, self.term.loss)
        sel_m, sel_v = plan.masked & plan.has_target, ~plan.masked & plan.has_target
        zero = pred.sum() * 0.0  # keeps the graph (and DDP's hooks) when a part is empty
        loss_m = per_patch[sel_m].mean() if sel_m.any() else zero
        loss_v = per_patch[sel_v].mean() if sel_v.any() else zero
        loss = loss_m + self.term.visible_weight * loss_v
        with torch.no_grad():
            cos = F.cosine_similarity(pred.float(), plan.targets, dim=1)
            idx = sel_m.nonzero().squeeze(1)
            idx = idx[:: -(-idx.numel() // ACC_PATCHES) or 1]  # evenly spaced over the batch's samples
            sim = F.normalize(pred[idx].float(), dim=1) @ F.normalize(plan.targets[idx], dim=1).T
            correct = (sim.argmax(1) == torch.arange(idx.numel(), device=idx.device)).sum()
            stats = torch.stack(
                [
                    per_patch[sel_m].sum(), sel_m.sum(), per_patch[sel_v].sum(), sel_v.sum(),
                    cos[sel_m].sum(), cos[sel_v].sum(), correct, torch.tensor(float(idx.numel()), device=idx.device),
                    plan.has_target.sum(),
                ]
            ).double()  # fmt: skip
            if gather:
                stats = comm.all_reduce_sum(stats)
        lm, nm, lv, nv, cm, cv, corr, nacc, nt = stats.tolist()
        metrics = {
            "loss": lm / max(nm, 1) + self.term.visible_weight * lv / max(nv, 1),
            "acc": corr / max(nacc, 1),  # masked patch → its own target among the batch's masked targets
            "chance": max(comm.world_size() if gather else 1, 1) / max(nacc, 1),
            "pairs": nm,  # masked patches with a target
            "cos_masked": cm / max(nm, 1),
            "cos_visible": cv / max(nv, 1),
            "mask_ratio": nm / max(nt, 1),
        }
        return ObjectiveResult(loss, metrics, int(sel_m.sum()))
