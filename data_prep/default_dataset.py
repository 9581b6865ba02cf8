"""Make sure a pretraining config's data exist: generate the synthetic default dataset, or export
and fuse an RGB-D sequence folder (``data.sequence``), when ``data.root`` has no index yet.

Used by ``tools/pretrain.sh`` (through ``tools/pretrain.py --prepare-data``) before training starts,
so the Quickstart needs no download and the ICL-NUIM recipe needs no manual preparation.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

from pixvox.config import PretrainConfig, load_config
from pixvox.engine.job_args import parse_job_args

log = logging.getLogger("pixvox.data_prep")


def ensure_synthetic_fusions(cfg: PretrainConfig) -> Path:
    """Generate ``<data.root>/../frames`` and ``clouds`` with the synthetic generator and fuse the
    frames into ``data.root`` unless its index.json exists. Returns ``data.root``."""
    from data_prep import make_fusions, synthetic

    root = Path(cfg.data.root)
    if (root / "index.json").is_file():
        return root
    s = cfg.data.synthetic
    base = root.parent
    log.info(
        "generating the synthetic default dataset in %s (%d scenes x %d frames)",
        base,
        s.scenes,
        s.frames_per_scene,
    )
    synthetic.generate(
        base,
        num_scenes=s.scenes,
        frames_per_scene=s.frames_per_scene,
        seed=cfg.experiment.seed,
        image_size=tuple(s.image_size),
    )
    make_fusions.make_fusions(
        base / "frames",
        root,
        voxel_size=cfg.data.voxel_size,
        frames_per_sample=1,
        depth_min=cfg.data.depth_min,
        depth_max=cfg.data.depth_max,
    )
    return root


def ensure_sequence_fusions(cfg: PretrainConfig) -> Path:
    """Export ``data.sequence`` to ``<data.root>/../frames/<sequence name>`` and fuse it into
    ``data.root`` (one frame per sample, stored at ``data.image_size`` when set) unless its
    index.json exists. Both steps skip what an earlier, interrupted run already finished."""
    from data_prep import make_fusions, rgbd_sequence

    root = Path(cfg.data.root)
    if (root / "index.json").is_file():
        return root
    seq = Path(cfg.data.sequence or "")
    if not seq.is_dir():
        raise SystemExit(
            f"data.sequence={cfg.data.sequence!r} is not a folder (resolved from {Path.cwd()}). "
            "Point it at an RGB-D sequence (see docs/data.md), e.g. data.sequence=../shared/data/icl_livingroom1"
        )
    frames = root.parent / "frames"
    log.info("exporting the RGB-D sequence %s to %s", seq, frames / seq.name)
    rgbd_sequence.export_sequence(seq, frames / seq.name)
    make_fusions.make_fusions(
        frames,
        root,
        voxel_size=cfg.data.voxel_size,
        frames_per_sample=1,
        depth_min=cfg.data.depth_min,
        depth_max=cfg.data.depth_max,
        image_size=tuple(cfg.data.image_size) if cfg.data.image_size else None,
    )
    return root


def prepare_from_pretrain_args(argv: Sequence[str]) -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    args = parse_job_args("prepare pretraining data", "configs/pretrain/quickstart.yaml", argv)
    cfg = load_config(PretrainConfig, args.config, args.overrides)
    root = Path(cfg.data.root)
    if (root / "index.json").is_file():
        return
    if cfg.data.sequence:
        ensure_sequence_fusions(cfg)
    elif cfg.data.synthetic.enabled:
        ensure_synthetic_fusions(cfg)
    else:
        raise SystemExit(
            f"{root / 'index.json'} not found. Prepare the data first (see docs/data.md), e.g.\n"
            f"  python data_prep/make_fusions.py --frames <exported frames> --out {root}\n"
            "or set data.sequence=<RGB-D sequence folder> to export and fuse one on first use"
        )
