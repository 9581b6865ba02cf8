"""Pretraining dataset over prepared voxelized RGB-D fusions (see docs/architecture.md)."""

from __future__ import annotations

import logging
from collections.abc import Collection, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from pixvox.config.pretrain import PretrainDataConfig
from pixvox.datasets.augment import (
    MIRROR_X,
    color_jitter,
    elastic_distortion,
    random_similarity,
    resize_crop_flip,
)
from pixvox.datasets.skipped import SkippedSample
from pixvox.geometry import voxelize
from pixvox.io.fusions import FusionFormatError, FusionIndex, FusionSample

KNOWN_INPUTS = frozenset({"frames", "view2", "partner"})  # see pixvox.objectives.base.INPUTS
log = logging.getLogger("pixvox.datasets")


def holdout_split(n: int, holdout_every: int) -> tuple[list[int], list[int]]:
    """(train, held-out) sample indices: every ``holdout_every``-th sample is held out (0 = none)."""
    if holdout_every <= 0:
        return list(range(n)), []
    held = [i for i in range(n) if i % holdout_every == 0]
    return [i for i in range(n) if i % holdout_every], held


class FusionPretrainDataset(torch.utils.data.Dataset):
    """Fusion samples with synchronized 2D/3D augmentation.

    Indexed by ``(i, seed)`` pairs (see :class:`pixvox.engine.sampler.ResumableBatchSampler`): the seed
    fixes the sample's augmentation. ``augment=False`` gives the un-augmented view (evaluation).

    Each item is a dict:
      ``coords`` int32 [Va, 3] augmented voxel coordinates; ``feats`` float32 [Va, C] student input
      (RGB in [-0.5, 0.5], or ones); ``orig_coords`` int32 [Vo, 3] the stored voxels (world frame);
      ``orig_to_aug`` int64 [Vo]; ``images`` float32 [F, 3, H, W] RGB in [0, 1]; ``depths`` float32
      [F, H, W] metres; ``intrinsics`` float32 [F, 3, 3]; ``cam_to_world`` float32 [F, 4, 4]; ``seed``.

    ``inputs`` (what the objectives need, pixvox.objectives.dataset_inputs) selects the optional parts:
    ``frames`` the four frame entries above (the pixel-level objectives); ``view2`` also ``coords2``,
    ``feats2``, ``orig_to_aug2`` (a second, independent 3D augmentation of the same voxels) and
    ``orig_coords2`` (= ``orig_coords``); ``partner`` the same four keys for ANOTHER fusion of the
    same scene, drawn among the stored view pairs with overlap >= ``partner_min_overlap``
    (``orig_coords2``: its stored voxels, same world frame), with its own 3D augmentation and colour
    jitter. With ``partner``, samples without such a partner in ``indices`` are left out (counted in
    ``num_without_partner``, logged).

    Every read checks the file against its index entry (keys, dtypes, shapes, voxel and frame
    counts; with ``data.verify_checksums`` also its SHA-256). With ``skip_unreadable`` (the training
    set) a sample that fails (or whose partner fails), or holds no voxel, comes back as a
    :class:`SkippedSample` instead of raising :class:`~pixvox.io.fusions.FusionFormatError`.
    """

    def __init__(
        self,
        root: str | Path,
        cfg: PretrainDataConfig,
        indices: Sequence[int] | None = None,
        augment: bool = True,
        inputs: Collection[str] = ("frames",),
        input_kind: str = "color",
        skip_unreadable: bool = False,
        partner_min_overlap: float = 0.3,
    ) -> None:
        self.index = FusionIndex.load(root)
        self.skip_unreadable = skip_unreadable
        if abs(self.index.voxel_size - cfg.voxel_size) > 1e-9:
            raise ValueError(
                f"{Path(root) / 'index.json'}: fusions were made at voxel size {self.index.voxel_size} m but "
                f"data.voxel_size is {cfg.voxel_size} m; set data.voxel_size={self.index.voxel_size} or rerun "
                "python -m pixvox.prep fusions"
            )
        F_cfg = cfg.frames_per_sample
        if F_cfg is not None and F_cfg != self.index.frames_per_sample:
            raise ValueError(
                f"{Path(root) / 'index.json'}: fusions hold {self.index.frames_per_sample} frames per sample "
                f"but data.frames_per_sample is {F_cfg}; set data.frames_per_sample="
                f"{self.index.frames_per_sample} (or leave it unset), or point data.root at another folder "
                "to make the fusions anew"
            )
        if len(self.index) == 0:
            raise ValueError(f"{Path(root) / 'index.json'}: the dataset has no samples")
        self.indices = list(range(len(self.index))) if indices is None else list(indices)
        unknown = set(inputs) - KNOWN_INPUTS
        if unknown:
            raise ValueError(f"unknown dataset inputs {sorted(unknown)}; valid: {sorted(KNOWN_INPUTS)}")
        self.cfg, self.augment, self.inputs, self.input_kind = cfg, augment, frozenset(inputs), input_kind
        if "view2" in self.inputs and "partner" in self.inputs:
            raise ValueError("inputs 'view2' and 'partner' both make the second view; ask for one")
        self.partners: list[list[int]] = []
        self.num_without_partner = 0
        if "partner" in self.inputs:
            self._keep_samples_with_partners(root, partner_min_overlap)

    def _keep_samples_with_partners(self, root: str | Path, min_overlap: float) -> None:
        local = {g: k for k, g in enumerate(self.indices)}
        partners: list[list[int]] = [[] for _ in self.indices]
        for vp in self.index.view_pairs(min_overlap):
            if vp.a in local and vp.b in local:  # both in this split: no held-out frame leaks in
                partners[local[vp.a]].append(vp.b)
                partners[local[vp.b]].append(vp.a)
        keep = [k for k, p in enumerate(partners) if p]
        self.num_without_partner = len(self.indices) - len(keep)
        if self.num_without_partner:
            log.warning(
                "%s: %d of %d samples have no other fusion of their scene with voxel overlap >= %g "
                "in this split; left out",
                Path(root) / "index.json",
                self.num_without_partner,
                len(self.indices),
                min_overlap,
            )
        self.indices = [self.indices[k] for k in keep]
        self.partners = [partners[k] for k in keep]

    def __len__(self) -> int:
        return len(self.indices)

    @property
    def num_files(self) -> int:
        """Distinct sample files this dataset reads."""
        return len(set(self.indices))

    def _load(self, j: int) -> FusionSample:
        if self.cfg.verify_checksums:
            self.index.verify(j)
        sample = self.index.load_sample(j)
        if sample.num_voxels == 0:
            raise FusionFormatError(f"{self.index.path(j)}: the sample has no voxels")
        return sample

    def _skip(self, j: int, err: FusionFormatError) -> SkippedSample:
        """The marker of an unreadable sample ``j`` (training set), or the error (elsewhere)."""
        if not self.skip_unreadable:
            raise err
        return SkippedSample(str(self.index.path(j)), str(err), j)

    def _augment_3d(self, coords: np.ndarray, colors: np.ndarray, rng: np.random.Generator | None):
        """``(coords [Va, 3] int32, feats [Va, C] float32, orig_to_aug [Vo] int64)`` of one view."""
        vs = self.cfg.voxel_size
        centres = (coords.astype(np.float64) + 0.5) * vs
        if rng is not None:
            a = self.cfg.augment_3d
            T = random_similarity(rng, a.up_axis, a.rotate_gravity, a.scale, a.flip, a.translate)
            centres = centres @ T[:3, :3].T + T[:3, 3]
            if a.elastic:
                for granularity, magnitude in a.elastic_params:
                    centres = elastic_distortion(centres, rng, granularity, magnitude)
        # Each original voxel maps to the augmented voxel its transformed centre falls in.
        new_coords, orig_to_aug, new_colors = voxelize(centres, vs, colors)
        if self.input_kind == "ones":
            feats = np.ones((new_coords.shape[0], 1), np.float32)
        else:
            rgb = torch.from_numpy(new_colors.astype(np.float32) / 255.0)
            if rng is not None and self.cfg.augment_3d.color_jitter > 0:
                # the image jitter on a [3, Va, 1] "image" of voxel colours
                rgb = color_jitter(rgb.T[:, :, None], rng, self.cfg.augment_3d.color_jitter)[:, :, 0].T
            feats = rgb.numpy() - 0.5
        return (
            torch.from_numpy(new_coords),
            torch.from_numpy(feats.astype(np.float32)),
            torch.from_numpy(orig_to_aug),
        )

    def __getitem__(self, key: tuple[int, int] | int) -> dict[str, Any] | SkippedSample:
        i, seed = key if isinstance(key, tuple) else (key, 0)
        try:
            sample = self._load(self.indices[i])
        except FusionFormatError as err:
            return self._skip(self.indices[i], err)
        rng = np.random.default_rng(seed) if self.augment else None
        item: dict[str, Any] = {"seed": int(seed), "name": self.index.samples[self.indices[i]].name}
        item["coords"], item["feats"], item["orig_to_aug"] = self._augment_3d(
            sample.coords, sample.colors, rng
        )
        item["orig_coords"] = torch.from_numpy(np.ascontiguousarray(sample.coords, dtype=np.int32))
        if "view2" in self.inputs or "partner" in self.inputs:
            other = sample
            if "partner" in self.inputs:
                choices = self.partners[i]
                j = choices[int(np.random.default_rng([seed, 3]).integers(len(choices)))]
                try:
                    other = self._load(j)
                except FusionFormatError as err:
                    return self._skip(j, err)
                item["partner"] = self.index.samples[j].name
            rng2 = np.random.default_rng([seed, 2]) if self.augment else None
            item["coords2"], item["feats2"], item["orig_to_aug2"] = self._augment_3d(
                other.coords, other.colors, rng2
            )
            item["orig_coords2"] = torch.from_numpy(np.ascontiguousarray(other.coords, dtype=np.int32))
        if "frames" in self.inputs:
            item.update(self._frames(sample, rng))
        return item

    def _frames(self, sample: Any, rng: np.random.Generator | None) -> dict[str, torch.Tensor]:
        """The sample's frames after 2D augmentation (poses follow a horizontal flip)."""
        item = {}
        F_, H, W = sample.depths.shape
        out_hw = tuple(self.cfg.image_size) if self.cfg.image_size else (H, W)
        images, depths, Ks, poses = [], [], [], []
        a2 = self.cfg.augment_2d
        for f in range(F_):
            img = torch.from_numpy(sample.images[f]).permute(2, 0, 1).float() / 255.0
            dep = torch.from_numpy(sample.depths[f].astype(np.float32)) / 1000.0
            K = torch.from_numpy(sample.intrinsics[f].astype(np.float64))
            img, dep, K, flipped = resize_crop_flip(img, dep, K, out_hw, rng, a2.resize_crop_scale, a2.hflip)
            pose = torch.from_numpy(sample.cam_to_world[f].astype(np.float64))
            poses.append((pose @ MIRROR_X if flipped else pose).float())
            if rng is not None:
                img = color_jitter(img, rng, a2.color_jitter)
            images.append(img)
            depths.append(dep)
            Ks.append(K.float())
        item["images"] = torch.stack(images)
        item["depths"] = torch.stack(depths)
        item["intrinsics"] = torch.stack(Ks)
        item["cam_to_world"] = torch.stack(poses)
        return item


def _offsets(sizes: Sequence[int]) -> torch.Tensor:
    return torch.tensor([0, *np.cumsum(sizes).tolist()], dtype=torch.long)


def _batch_coords(coords: Sequence[torch.Tensor]) -> torch.Tensor:
    return torch.cat(
        [torch.cat([torch.full((c.shape[0], 1), b, dtype=torch.int32), c], 1) for b, c in enumerate(coords)]
    )


def collate_pretrain(items: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Batch items: coordinates get a leading batch column ``[N, 4]`` (MinkowskiEngine's layout),
    per-sample voxel maps are shifted into batch-wide indices, frames are concatenated with
    ``frame_sample`` naming each frame's sample."""
    if not items:
        raise ValueError("empty batch")
    frames = "images" in items[0]
    shapes = {tuple(it["images"].shape[-2:]) for it in items} if frames else set()
    if len(shapes) > 1:
        raise ValueError(f"frames of different sizes {sorted(shapes)} in one batch; set data.image_size")
    out: dict[str, Any] = {"seeds": [it["seed"] for it in items], "names": [it["name"] for it in items]}
    if "partner" in items[0]:
        out["partners"] = [it["partner"] for it in items]
    views = [""] + (["2"] if "coords2" in items[0] else [])
    for v in views:
        out[f"orig_coords{v}"] = _batch_coords([it[f"orig_coords{v}"] for it in items])
        out[f"orig_offsets{v}"] = _offsets([it[f"orig_coords{v}"].shape[0] for it in items])
        off = _offsets([it[f"coords{v}"].shape[0] for it in items])
        out[f"coords{v}"] = _batch_coords([it[f"coords{v}"] for it in items])
        out[f"feats{v}"] = torch.cat([it[f"feats{v}"] for it in items])
        out[f"voxel_offsets{v}"] = off
        out[f"orig_to_aug{v}"] = torch.cat([it[f"orig_to_aug{v}"] + off[b] for b, it in enumerate(items)])
    if frames:
        for key in ("images", "depths", "intrinsics", "cam_to_world"):
            out[key] = torch.cat([it[key] for it in items])
        out["frame_sample"] = torch.cat(
            [torch.full((it["images"].shape[0],), b, dtype=torch.long) for b, it in enumerate(items)]
        )
    return out
