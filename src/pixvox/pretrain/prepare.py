"""Make sure a pretraining config's fusions exist: generate the synthetic default dataset
(``data.synthetic.enabled``) or export and fuse an RGB-D sequence (``data.sequence``) when
``data.root`` has no index yet; otherwise say how to prepare them.

The preparers still live in the repository's ``data_prep/`` (as for pixvox.finetune.prepare) until
they move into the package (pixvox.prep); only this module reaches them.
"""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

from pixvox.config import PretrainConfig
from pixvox.errors import MissingDataError

INDEX_JSON = "index.json"


def _data_prep(name: str):
    try:
        return importlib.import_module(f"data_prep.{name}")
    except ModuleNotFoundError:
        repo = Path(__file__).resolve().parents[3]
        if not (repo / "data_prep" / f"{name}.py").is_file():
            raise MissingDataError(
                f"data preparation ({name}) needs the pixvox repository checkout; prepare the fusions "
                "there (see docs/data.md) and point data.root at them"
            ) from None
        sys.path.insert(0, str(repo))
        return importlib.import_module(f"data_prep.{name}")


def ensure_pretrain_data(cfg: PretrainConfig) -> Path:
    """Return ``data.root`` after preparing it if its index.json is missing and the config says how."""
    root = Path(cfg.data.root)
    if (root / INDEX_JSON).is_file():
        return root
    if cfg.data.sequence:
        if not Path(cfg.data.sequence).is_dir():
            raise MissingDataError(
                f"data.sequence={cfg.data.sequence!r} is not a folder (resolved from {Path.cwd()}); point "
                "it at an RGB-D sequence (docs/data.md), e.g. data.sequence=../shared/data/icl_livingroom1"
            )
        _data_prep("default_dataset").ensure_sequence_fusions(cfg)
    elif cfg.data.synthetic.enabled:
        _data_prep("default_dataset").ensure_synthetic_fusions(cfg)
    else:
        raise MissingDataError(
            f"{root / INDEX_JSON} not found (data.root={cfg.data.root}, resolved from {Path.cwd()}). "
            "Prepare fusions first (docs/data.md), e.g. `python data_prep/make_fusions.py --frames "
            f"<exported frames> --out {root}`, or set data.sequence=<RGB-D sequence folder> or "
            "data.synthetic.enabled=true to make them on first use"
        )
    return root
