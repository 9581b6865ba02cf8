"""One pretraining step: match pixels to voxels, run both networks, score the pairs."""

from __future__ import annotations

from typing import Any

import torch

from pixvox.config.pretrain import PretrainConfig
from pixvox.engine import timing
from pixvox.engine.trainer import StepOutput
from pixvox.losses import (
    InfoNCEResult,
    PixelToVoxelInfoNCE,
    PointInfoNCE,
    select_pixel_pairs,
    select_point_pairs,
    select_voxel_pairs,
)
from pixvox.ops import VoxelHash, pixel_to_voxel
from pixvox.pretrain.model import uses_pointcontrast, uses_ppkt

PAIR_STREAM = 0x5BD1E995  # decorrelates pair sampling from the augmentation stream of the same seed


@timing.timed("transfer")
def to_device(batch: dict[str, Any], device: torch.device) -> dict[str, Any]:
    non_blocking = device.type == "cuda"
    return {k: v.to(device, non_blocking=non_blocking) if torch.is_tensor(v) else v for k, v in batch.items()}


@timing.timed("matching")
def match_pixels(
    batch: dict[str, Any], voxel_size: float, depth_min: float, depth_max: float
) -> dict[str, torch.Tensor]:
    """Pixels of every frame matched to the student's (augmented) voxels.

    Matching happens in the fusion's world frame against the stored voxels, then follows each stored
    voxel to its augmented voxel (``orig_to_aug``), so it is exact under any 3D augmentation.
    Returns ``frame``, ``v``, ``u`` (int64 [P]) and ``voxel`` (int64 [P], index into ``coords``) of
    the matched pixels, and ``sample`` (int64 [P]).
    """
    table = VoxelHash(batch["orig_coords"])
    m = pixel_to_voxel(
        batch["depths"],
        batch["intrinsics"],
        batch["cam_to_world"],
        voxel_size,
        table,
        frame_batch=batch["frame_sample"],
        depth_min=depth_min,
        depth_max=depth_max,
    )
    keep = m.voxel_index >= 0
    bvu = m.pixel_bvu[keep]
    frame = bvu[:, 0]
    return {
        "frame": frame,
        "v": bvu[:, 1],
        "u": bvu[:, 2],
        "voxel": batch["orig_to_aug"][m.voxel_index[keep]],
        "sample": batch["frame_sample"][frame],
    }


class PretrainStep:
    """Callable ``(batch, step) -> StepOutput`` for :class:`pixvox.engine.trainer.Trainer`."""

    def __init__(self, model: torch.nn.Module, cfg: PretrainConfig, device: torch.device) -> None:
        self.model, self.cfg, self.device = model, cfg, device
        self.ppkt = PixelToVoxelInfoNCE(cfg.loss.temperature, cfg.loss.symmetric) if uses_ppkt(cfg) else None
        self.pointcontrast = (
            PointInfoNCE(cfg.loss.pointcontrast_temperature) if uses_pointcontrast(cfg) else None
        )
        self.quota = max(1, cfg.loss.num_pairs // cfg.train.batch_size)
        self.pc_quota = max(1, cfg.loss.pointcontrast_pairs // cfg.train.batch_size)
        # Stage timers for pixvox.bench.pretrain (forward hooks; one global read while nothing records).
        net = getattr(model, "module", model)  # DDP keeps the network in .module
        timing.time_module(model, "forward")
        parts = {
            "student_forward": getattr(net, "student", None),
            "teacher_forward": getattr(net, "teacher", None),
        }
        for name, part in [*parts.items(), ("loss", self.ppkt), ("loss", self.pointcontrast)]:
            if isinstance(part, torch.nn.Module):
                timing.time_module(part, name)

    def losses(
        self, batch: dict[str, Any], gather: bool = True
    ) -> tuple[torch.Tensor, dict[str, float], int]:
        batch = to_device(batch, self.device)
        seeds = [int(s) ^ PAIR_STREAM for s in batch["seeds"]]
        out = self.model(batch)
        total = out["voxel_feats"].new_zeros(())
        metrics: dict[str, float] = {}
        items = 0
        if self.ppkt is not None:
            d = self.cfg.data
            mt = match_pixels(batch, d.voxel_size, d.depth_min, d.depth_max)
            timing.begin("pairs")
            if self.cfg.loss.pixel_level:
                pairs = select_pixel_pairs(mt["voxel"], mt["sample"], seeds, self.quota)
            else:
                pairs = select_voxel_pairs(mt["voxel"], batch["voxel_offsets"], seeds, self.quota)
            sel = pairs.pixel_index
            fmap = out["pixel_feats"]
            pixel_feats = fmap.permute(0, 2, 3, 1)[mt["frame"][sel], mt["v"][sel], mt["u"][sel]]
            timing.end("pairs")
            res: InfoNCEResult = self.ppkt(
                out["voxel_feats"], pixel_feats, pairs.pair_voxel, pairs.pixel_pair, gather=gather
            )
            total = total + res.loss
            metrics.update(
                loss_ppkt=res.loss_value,
                acc=res.accuracy,
                chance=1.0 / res.num_pairs,
                pairs=res.num_pairs,
                matched_pixels=float(mt["voxel"].numel()),
            )
            items += pairs.pair_voxel.numel()
        if self.pointcontrast is not None:
            timing.begin("pairs")
            i1, i2 = select_point_pairs(
                batch["orig_to_aug"],
                batch["orig_to_aug2"],
                batch["orig_offsets"],
                [s ^ 0x2545F491 for s in seeds],
                self.pc_quota,
            )
            timing.end("pairs")
            res = self.pointcontrast(out["voxel_feats"], out["voxel_feats2"], i1, i2, gather=gather)
            w = self.cfg.loss.pointcontrast_weight if self.ppkt is not None else 1.0
            total = total + w * res.loss
            metrics.update(loss_pointcontrast=res.loss_value, acc_pointcontrast=res.accuracy)
            if self.ppkt is None:
                metrics.update(acc=res.accuracy, chance=1.0 / res.num_pairs)
            items += i1.numel()
        metrics["loss"] = metrics.get("loss_ppkt", 0.0) + (
            (self.cfg.loss.pointcontrast_weight if self.ppkt is not None else 1.0)
            * metrics.get("loss_pointcontrast", 0.0)
        )
        return total, metrics, items

    def __call__(self, batch: dict[str, Any], step: int) -> StepOutput:
        loss, metrics, items = self.losses(batch)
        return StepOutput(loss=loss, metrics=metrics, items=items)
