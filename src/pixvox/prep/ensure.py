"""Make sure a job's configured data exist, preparing them on first use where the config says how.

Both jobs call this once before their training processes start (``tools/pretrain.py --prepare-data``,
``tools/finetune_seg.py --prepare-data``; a single-process run also calls it itself):

- :func:`ensure_pretrain_data`: ``data.root`` holds fusions (``index.json``), or they are made from
  ``data.sequence`` (an RGB-D sequence of any layout :mod:`pixvox.prep.sequence` reads, or a folder of
  them: exported to ``<data.root>/../frames`` and fused) or from the synthetic default dataset
  (``data.synthetic.enabled``);
- :func:`ensure_segmentation_data`: ``data.root`` holds labeled clouds (``index.json``) or Pointcept's
  preprocessed scenes (read in place), or they are converted from ``data.scannet_npy`` (mmdetection3d's
  ScanNet arrays) or generated (``data.synthetic.enabled``: ``data.root`` must end in ``clouds``);
- :func:`open_segmentation_data`: the labeled scenes of ``data.root`` in whichever of the two layouts.

Every step skips what an earlier, interrupted run already finished.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

from pixvox.config import ConfigError, FinetuneConfig, PretrainConfig, load_config
from pixvox.config.pretrain import SyntheticDataConfig
from pixvox.errors import MissingDataError
from pixvox.io.clouds import INDEX_JSON, CloudIndex
from pixvox.prep.pointcept import PointceptScenes, is_pointcept_root

# The preparers (fusion, synthetic, sequence export, ScanNet conversion) are imported where they run:
# they pull in torch and scipy (~3 s), and a launch whose data already exist only needs the checks.

log = logging.getLogger("pixvox.prep")

#: The synthetic generator's seed for fine-tuning data (``experiment.seed`` of the Quickstart pretraining),
#: so the fine-tuning rooms are the Quickstart's rooms whatever the fine-tuning seed.
SYNTHETIC_SEED = 0


def _generate_synthetic(base: Path, s: SyntheticDataConfig, seed: int) -> None:
    log.info(
        "generating the synthetic default dataset in %s (%d scenes x %d frames)",
        base,
        s.scenes,
        s.frames_per_scene,
    )
    from pixvox.prep import synthetic

    synthetic.generate(
        base,
        num_scenes=s.scenes,
        frames_per_scene=s.frames_per_scene,
        seed=seed,
        image_size=tuple(s.image_size),
    )


def _fuse(cfg: PretrainConfig, frames: Path, root: Path, image_size: tuple[int, int] | None) -> None:
    from pixvox.prep import fusion

    fusion.make_fusions(
        frames,
        root,
        voxel_size=cfg.data.voxel_size,
        frames_per_sample=cfg.data.frames_per_sample or 1,
        stride=cfg.data.frame_stride,
        depth_min=cfg.data.depth_min,
        depth_max=cfg.data.depth_max,
        image_size=image_size,
    )


def ensure_pretrain_data(cfg: PretrainConfig) -> Path:
    """Return ``data.root`` after making its fusions if ``index.json`` is missing (see the module doc)."""
    root = Path(cfg.data.root)
    if (root / "index.json").is_file():
        return root
    if cfg.data.sequence:
        seq = Path(cfg.data.sequence)
        if not seq.is_dir():
            raise MissingDataError(
                f"data.sequence={cfg.data.sequence!r} is not a folder (resolved from {Path.cwd()}). Point it at an "
                "RGB-D sequence (see docs/data.md), e.g. data.sequence=../shared/data/icl_livingroom1"
            )
        from pixvox.prep.sequence import export_sequence, find_sequences

        frames = root.parent / "frames"
        for folder in find_sequences(seq):
            log.info("exporting the RGB-D sequence %s to %s", folder, frames / folder.name)
            export_sequence(folder, frames / folder.name)
        _fuse(cfg, frames, root, tuple(cfg.data.image_size) if cfg.data.image_size else None)
        return root
    if cfg.data.synthetic.enabled:
        _generate_synthetic(root.parent, cfg.data.synthetic, cfg.experiment.seed)
        _fuse(cfg, root.parent / "frames", root, None)
        return root
    raise MissingDataError(
        f"{root / 'index.json'} not found. Prepare the data first (see docs/data.md), e.g.\n"
        f"  python -m pixvox.prep fusions --frames <exported frames> --out {root}\n"
        "or set data.sequence=<RGB-D sequence folder> to export and fuse one on first use"
    )


def ensure_segmentation_data(cfg: FinetuneConfig) -> Path:
    """Return ``data.root`` after preparing it if it holds no labeled scenes and the config says how."""
    root = Path(cfg.data.root)
    if (root / INDEX_JSON).is_file() or is_pointcept_root(root):
        return root
    if cfg.data.scannet_npy:
        src = Path(cfg.data.scannet_npy)
        if not src.is_dir():
            raise MissingDataError(f"data.scannet_npy={src}: folder not found")
        from pixvox.prep.scannet.meshes import convert_scannet_npy

        log.info("converting the ScanNet scans in %s to labeled clouds in %s", src, root)
        convert_scannet_npy(src, root)
        return root
    if cfg.data.synthetic.enabled:
        if root.name != "clouds":
            raise ConfigError(
                f"data.root={root}: the synthetic generator writes <base>/clouds; set data.root "
                "to a folder named 'clouds' (e.g. data/synthetic/clouds)"
            )
        _generate_synthetic(root.parent, cfg.data.synthetic, SYNTHETIC_SEED)
        return root
    raise MissingDataError(
        f"{root / INDEX_JSON} not found and {root} holds no Pointcept scene folders: prepare the labeled "
        "clouds first (docs/data.md: python -m pixvox.prep scannet|s3dis ...), point data.root at "
        "Pointcept-preprocessed scenes, or set data.synthetic.enabled=true / data.scannet_npy"
    )


def open_segmentation_data(cfg: FinetuneConfig) -> CloudIndex | PointceptScenes:
    """The labeled scenes of ``data.root``: pixvox labeled clouds (``index.json``) or Pointcept's layout
    (labels from ``data.label_field``). Run :func:`ensure_segmentation_data` first."""
    root = Path(cfg.data.root)
    if (root / INDEX_JSON).is_file() or not is_pointcept_root(root):
        return CloudIndex.load(root)
    return PointceptScenes(root, cfg.data.label_field)


def prepare_from_pretrain_args(argv: Sequence[str]) -> None:
    """``tools/pretrain.py --prepare-data [CONFIG] [key=value ...]``: ensure the pretraining data; a
    missing input ends the process with the message (no traceback)."""
    from pixvox.engine.job_args import parse_job_args  # argument syntax shared with the training jobs

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    args = parse_job_args("prepare pretraining data", "configs/pretrain/quickstart.yaml", argv)
    cfg = load_config(PretrainConfig, args.config, args.overrides)
    try:
        ensure_pretrain_data(cfg)
    except FileNotFoundError as err:
        raise SystemExit(str(err)) from err
