"""Make sure a fine-tuning config's labeled clouds exist; prepare them on first use where the config says how.

- ``data.scannet_npy``: convert mmdetection3d-style ScanNet ``.npy`` scans (e.g. ../shared/data) to
  labeled clouds with ScanNet-20 labels.
- ``data.synthetic.enabled``: generate the synthetic default dataset (``data_prep/synthetic.py``; its
  labeled clouds land in ``<root>/../clouds``, so ``data.root`` must end in ``clouds``).

Run once before training processes start (``tools/finetune_seg.py --prepare-data``); a single-process
run also calls it itself.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

from pixvox.config import ConfigError
from pixvox.config.finetune import FinetuneConfig
from pixvox.datasets.segmentation import convert_scannet_npy
from pixvox.errors import MissingDataError
from pixvox.io.clouds import INDEX_JSON

log = logging.getLogger("pixvox")

#: The synthetic generator's seed used by the Quickstart (``experiment.seed`` of its pretraining).
SYNTHETIC_SEED = 0


def _import_synthetic():
    try:
        from data_prep import synthetic
    except ImportError:
        repo = Path(__file__).resolve().parents[3]
        if not (repo / "data_prep" / "synthetic.py").is_file():
            raise
        sys.path.insert(0, str(repo))
        from data_prep import synthetic
    return synthetic


def ensure_segmentation_data(cfg: FinetuneConfig) -> Path:
    """Return ``data.root`` after preparing it if its index.json is missing and the config says how."""
    root = Path(cfg.data.root)
    if (root / INDEX_JSON).is_file():
        return root
    if cfg.data.scannet_npy:
        src = Path(cfg.data.scannet_npy)
        if not src.is_dir():
            raise MissingDataError(f"data.scannet_npy={src}: folder not found")
        log.info("converting the ScanNet scans in %s to labeled clouds in %s", src, root)
        convert_scannet_npy(src, root)
        return root
    if cfg.data.synthetic.enabled:
        if root.name != "clouds":
            raise ConfigError(
                f"data.root={root}: the synthetic generator writes <base>/clouds; set data.root "
                "to a folder named 'clouds' (e.g. data/synthetic/clouds)"
            )
        s = cfg.data.synthetic
        log.info(
            "generating the synthetic default dataset in %s (%d scenes x %d frames)",
            root.parent,
            s.scenes,
            s.frames_per_scene,
        )
        _import_synthetic().generate(
            root.parent,
            num_scenes=s.scenes,
            frames_per_scene=s.frames_per_scene,
            seed=SYNTHETIC_SEED,
            image_size=tuple(s.image_size),
        )
        return root
    raise MissingDataError(
        f"{root / INDEX_JSON} not found: prepare the labeled clouds first (see docs/finetune.md: "
        "data_prep/ readers for S3DIS and ScanNet), or set data.synthetic.enabled=true / data.scannet_npy"
    )
