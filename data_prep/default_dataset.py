"""Make sure a pretraining config's data exist: generate the synthetic default dataset when asked.

Used by ``tools/pretrain.sh`` (through ``tools/pretrain.py --prepare-data``) before training starts,
so the Quickstart needs no download.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

from pixvox.config import PretrainConfig, load_config
from pixvox.pretrain.run import parse_args

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


def prepare_from_pretrain_args(argv: Sequence[str]) -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    args = parse_args(argv)
    cfg = load_config(PretrainConfig, args.config, args.overrides)
    root = Path(cfg.data.root)
    if (root / "index.json").is_file():
        return
    if not cfg.data.synthetic.enabled:
        raise SystemExit(
            f"{root / 'index.json'} not found. Prepare the data first (see docs/data.md), e.g.\n"
            f"  python data_prep/make_fusions.py --frames <exported frames> --out {root}"
        )
    ensure_synthetic_fusions(cfg)
