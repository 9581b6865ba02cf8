"""Arms of the benchmark and their pretraining runs, cached by the hash of the resolved config.

An arm is one file ``configs/transfer/<arm>.yaml``: a pretraining config over the shared
``base.yaml``, plus an optional ``transfer:`` section with the benchmark's own options
(``pretrain: false``: the student keeps its random initial weights; ``default: false``: the arm runs
only when named in ``--arms``). Adding an objective's arm is adding one such file.

A run of arm ``a`` with seed ``s`` lives in ``<runs>/<a>_s<s>_<hash>`` where ``hash`` is the SHA-256
(first 12 hex digits) of its resolved config; a finished run (``summary.json``, not stopped early,
the same ``config.yaml``) is reused, an interrupted one resumes from its newest checkpoint.
"""

from __future__ import annotations

import contextlib
import hashlib
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import yaml

from pixvox.config import ConfigError, PretrainConfig, apply_overrides, from_dict, to_dict
from pixvox.config.loader import load_yaml_tree

ARMS_DIR = Path("configs/transfer")
BASE_FILE = "base.yaml"
FINETUNE_RECIPE = Path("configs/finetune/transfer.yaml")  #: the benchmark's fine-tuning config
TRANSFER_KEY = "transfer"


@dataclass(frozen=True)
class ArmOptions:
    """The ``transfer:`` section of an arm file."""

    pretrain: bool = True  #: False: evaluate the randomly initialised student (no pretraining run)
    #: False: left out of the default run (e.g. an arm too slow for its 60-minute budget), run only
    #: when named in ``--arms``
    default: bool = True


@dataclass(frozen=True)
class Arm:
    name: str
    file: Path
    options: ArmOptions
    data: dict  #: the merged pretraining config tree (without ``transfer:``)
    origins: dict


def arm_names(arms_dir: Path = ARMS_DIR) -> list[str]:
    """Every arm file of ``arms_dir`` (all ``*.yaml`` but the base)."""
    return sorted(p.stem for p in arms_dir.glob("*.yaml") if p.name != BASE_FILE)


def default_arm_names(arms_dir: Path = ARMS_DIR) -> list[str]:
    """The arms of a run without ``--arms``: every arm file whose ``transfer.default`` is not false."""
    return [a for a in arm_names(arms_dir) if load_arm(a, arms_dir).options.default]


def load_arm(name: str, arms_dir: Path = ARMS_DIR) -> Arm:
    """Read ``<arms_dir>/<name>.yaml``; an unknown arm or ``transfer:`` key is an error naming it."""
    path = arms_dir / f"{name}.yaml"
    if not path.is_file():
        raise ConfigError(f"arm {name!r}: {path} not found; arms: {', '.join(arm_names(arms_dir))}")
    data, origins = load_yaml_tree(path)
    raw = data.pop(TRANSFER_KEY, None) or {}
    known = {f.name for f in fields(ArmOptions)}
    unknown = sorted(set(raw) - known)
    if unknown:
        raise ConfigError(f"{path}: unknown key(s) {unknown} in '{TRANSFER_KEY}:' (known: {sorted(known)})")
    return Arm(name, path, ArmOptions(**raw), data, origins)


def arm_config(arm: Arm, seed: int, overrides: Sequence[str]) -> PretrainConfig:
    """The arm's resolved pretraining config for ``seed`` with the benchmark's ``overrides``."""
    data = yaml.safe_load(yaml.safe_dump(arm.data))  # a copy: overrides change it in place
    origins = dict(arm.origins)
    apply_overrides(data, origins, [*overrides, f"experiment.seed={seed}"])
    return from_dict(PretrainConfig, data, origins, str(arm.file))


#: Config keys added after runs were cached, with their defaults: at the default such a key is left
#: out of the hash and of the comparison with a run's saved config, so the runs made before the key
#: existed stay reusable (their config.yaml lacks it; the value they ran with was the default's).
ADDED_LATER: dict[tuple[str, str], Any] = {
    ("teacher", "linear_stage"): -1,
    ("optim", "backbone_lr_factor"): 1.0,  # fine-tuning configs
    ("init", "head"): "new",
    ("init", "probe_l2"): 1e-4,
    ("init", "keep_bn_stats"): False,
}


def cache_view(d: dict[str, Any]) -> dict[str, Any]:
    """A resolved config's dict as the run cache compares it: keys of :data:`ADDED_LATER` at their
    default left out (a copy; ``d`` is not changed)."""
    out = dict(d)
    for (section, key), default in ADDED_LATER.items():
        if isinstance(out.get(section), dict) and out[section].get(key, default) == default:
            out[section] = {k: v for k, v in out[section].items() if k != key}
    return out


def config_hash(cfg: Any) -> str:
    """First 12 hex digits of the SHA-256 of the resolved config, run name and folder left out."""
    d = cache_view(to_dict(cfg))
    d["experiment"] = {k: v for k, v in d["experiment"].items() if k not in ("name", "output_root")}
    return hashlib.sha256(yaml.safe_dump(d, sort_keys=True).encode()).hexdigest()[:12]


def finished(run_dir: Path, cfg: Any) -> dict | None:
    """The run's summary when it finished with exactly ``cfg``, else None."""
    import json

    summary, saved = run_dir / "summary.json", run_dir / "config.yaml"
    if not (summary.is_file() and saved.is_file()):
        return None
    if cache_view(yaml.safe_load(saved.read_text())) != cache_view(to_dict(cfg)):
        return None
    s = json.loads(summary.read_text())
    return None if s.get("stopped_early") else s


def name_run(cfg: PretrainConfig, runs: Path, arm: str) -> Path:
    """Name ``cfg``'s pretraining run by its arm, seed and config hash, under ``runs``; its folder
    (known before the run exists, so a fine-tuning can be planned from it)."""
    cfg.experiment.name = f"{arm}_s{cfg.experiment.seed}_{config_hash(cfg)}"
    cfg.experiment.output_root = str(runs)
    return runs / cfg.experiment.name


def pretrain_run(cfg: PretrainConfig, runs: Path, arm: str, log_file: Path) -> tuple[Path, dict, bool]:
    """Run (or reuse) the pretraining of ``cfg`` under ``runs``; returns (run dir, summary, reused).

    The job's console output goes to ``log_file``. A run that stops early (SIGINT/SIGTERM) raises
    KeyboardInterrupt so the benchmark stops too; rerunning resumes it."""
    from pixvox.pretrain.run import PretrainJob

    run_dir = name_run(cfg, runs, arm)
    done = finished(run_dir, cfg)
    if done is not None:
        return run_dir, done, True
    log_file.parent.mkdir(parents=True, exist_ok=True)
    with open(log_file, "a") as out, contextlib.redirect_stdout(out), warnings.catch_warnings():
        if cfg.teacher.weights == "none":  # the random-teacher control asks for exactly this
            warnings.filterwarnings("ignore", message=".*RANDOM weights.*", category=UserWarning)
        summary = PretrainJob.launch(cfg, resume="auto")
    if summary.get("stopped_early"):
        raise KeyboardInterrupt(f"pretraining {run_dir} was interrupted; rerun to resume it")
    return run_dir, summary, False
