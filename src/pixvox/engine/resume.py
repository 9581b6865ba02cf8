"""The one resume policy of every training job.

``--resume`` takes ``auto`` (the newest complete checkpoint of the run, if any), a checkpoint path,
``none`` (start over), or ``force`` / ``force:PATH`` (as ``auto`` / ``PATH``, accepting differences).

A checkpoint records what the run was made with (:class:`Provenance`): the resolved config and
the SHA-256 of every weight file the run read (teacher weights, the fine-tuning init checkpoint).
Resuming compares both with the new run: a difference raises :class:`ResumeMismatchError` naming
the keys and files, unless the resume is forced. Keys that do not change what is trained
(:data:`MAY_CHANGE_ON_RESUME`: the step budget, logging, workers, ...) may differ.

The network then loads the checkpoint's ``model`` entry: every tensor the job saves must be there
with its shape, and nothing else (:func:`load_model_state`); then the optimizer, schedule, AMP
scaler and RNG states.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from pixvox.engine import checkpoint as ckpt
from pixvox.engine.logger import log
from pixvox.errors import CheckpointMismatchError, ResumeMismatchError, UserError
from pixvox.io.atomic import sha256_file

__all__ = [
    "MAY_CHANGE_ON_RESUME",
    "Provenance",
    "ResumeRequest",
    "config_differences",
    "load_model_state",
    "parse_resume",
    "resume_training",
]

#: Config keys (and sections) a resumed run may change: they do not alter the trained weights of the
#: steps already taken. ``train.max_steps`` extends or shortens a run.
MAY_CHANGE_ON_RESUME: tuple[str, ...] = (
    "train.max_steps",
    "train.num_workers",
    "train.cpu_threads",
    "train.log_every",
    "train.checkpoint_every",
    "train.keep_checkpoints",
    "train.max_nonfinite_steps",
    "data.max_skipped_fraction",
    "data.verify_checksums",
    "experiment.output_root",
    "logging",
    "eval",
)


@dataclass(frozen=True)
class ResumeRequest:
    """A parsed ``--resume`` value: ``spec`` for :func:`pixvox.engine.checkpoint.resolve_resume`."""

    spec: str | None  #: None = start over, "auto", or a path
    force: bool = False


def parse_resume(value: str | None) -> ResumeRequest:
    """``auto`` | ``none`` | PATH | ``force`` | ``force:PATH`` → :class:`ResumeRequest`."""
    value = (value or "").strip()
    force = value == "force" or value.startswith("force:")
    if force:
        value = value[len("force:") :] if value.startswith("force:") else "auto"
    if value in ("", "none"):
        return ResumeRequest(None, force)
    return ResumeRequest(value, force)


def _flatten(d: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in d.items():
        if isinstance(v, Mapping):
            out.update(_flatten(v, f"{prefix}{k}."))
        elif isinstance(v, (list, tuple)) and v and all(isinstance(x, Mapping) for x in v):
            for i, x in enumerate(v):  # sections in a list (loss.terms): one key per leaf
                out.update(_flatten(x, f"{prefix}{k}[{i}]."))
        else:
            out[f"{prefix}{k}"] = list(v) if isinstance(v, tuple) else v
    return out


def _exempt(key: str, exempt: Iterable[str]) -> bool:
    return any(key == e or key.startswith(e + ".") for e in exempt)


def config_differences(
    saved: Mapping[str, Any],
    current: Mapping[str, Any],
    defaults: Mapping[str, Any] | None = None,
    exempt: Iterable[str] = MAY_CHANGE_ON_RESUME,
) -> list[str]:
    """Lines ``key: <saved> in the checkpoint, <current> now`` for every differing leaf key.

    A key the checkpoint lacks (written before the key existed) counts as its value in ``defaults``.
    """
    old, new = _flatten(saved), _flatten(current)
    base = _flatten(defaults or {})
    missing = object()
    lines = []
    for key in sorted(set(old) | set(new)):
        if _exempt(key, exempt):
            continue
        a = old.get(key, base.get(key, missing))
        b = new.get(key, missing)
        if a != b:
            show = lambda v: "(absent)" if v is missing else repr(v)  # noqa: E731
            lines.append(f"{key}: {show(a)} in the checkpoint, {show(b)} now")
    return lines


@dataclass
class Provenance:
    """What a run is made with: its resolved config and the weight files it read (key → path)."""

    config: dict[str, Any]
    weight_files: dict[str, Path] = field(default_factory=dict)
    defaults: dict[str, Any] = field(default_factory=dict)  #: the schema's defaults, for old checkpoints
    #: re-resolves a checkpoint's config through today's schema (e.g. shorthand keys of older versions
    #: into their canonical form) before comparing; left as saved where it does not load
    normalize: Callable[[Mapping[str, Any]], dict[str, Any]] | None = None
    _hashes: dict[str, dict[str, str]] | None = field(default=None, repr=False)

    def file_records(self) -> dict[str, dict[str, str]]:
        """``{key: {"path", "sha256"}}`` (hashed once; stored in every checkpoint)."""
        if self._hashes is None:
            self._hashes = {
                key: {"path": str(path), "sha256": sha256_file(path)}
                for key, path in sorted(self.weight_files.items())
            }
        return self._hashes

    def checkpoint_entries(self) -> dict[str, Any]:
        return {"config": self.config, "weight_files": self.file_records()}

    def differences(self, state: Mapping[str, Any]) -> list[str]:
        """How this run differs from the one that wrote checkpoint ``state``."""
        lines = []
        if isinstance(state.get("config"), Mapping):
            saved_cfg = state["config"]
            if self.normalize is not None:
                try:
                    saved_cfg = self.normalize(saved_cfg)
                except (UserError, ValueError, TypeError):
                    pass  # keys of another version: compare as saved, every difference is listed
            lines += config_differences(saved_cfg, self.config, self.defaults)
        saved = state.get("weight_files")
        if isinstance(saved, Mapping):
            mine = self.file_records()
            for key in sorted(set(saved) | set(mine)):
                a, b = saved.get(key), mine.get(key)
                if (a or {}).get("sha256") != (b or {}).get("sha256"):
                    was = f"{a['path']} (sha256 {a['sha256'][:12]})" if a else "no file"
                    now = f"{b['path']} (sha256 {b['sha256'][:12]})" if b else "no file"
                    lines.append(f"weight file {key}: {was} in the checkpoint, {now} now")
        return lines


def load_model_state(
    net: torch.nn.Module, saved: Mapping[str, torch.Tensor], expected: Iterable[str], path: Path
) -> None:
    """Load ``saved`` into ``net``: exactly the ``expected`` keys (what the job saves), same shapes.

    Tensors outside ``expected`` (a frozen teacher backbone restored from its own file) keep their
    values. Raises :class:`CheckpointMismatchError` naming what does not fit.
    """
    expected = set(expected)
    current = net.state_dict()
    missing = sorted(expected - set(saved))
    unexpected = sorted(set(saved) - expected)
    shapes = [
        f"{k} {tuple(v.shape)} vs {tuple(current[k].shape)}"
        for k, v in saved.items()
        if k in current and hasattr(v, "shape") and tuple(v.shape) != tuple(current[k].shape)
    ]
    if missing or unexpected or shapes:
        raise CheckpointMismatchError(
            f"{path} does not fit this network: {len(missing)} missing tensors {missing[:5]}, "
            f"{len(unexpected)} unexpected {unexpected[:5]}, {len(shapes)} of another shape {shapes[:5]}. "
            "It was written by a run with another architecture; resume it with its own config, or "
            "start over with --resume none"
        )
    net.load_state_dict(dict(saved), strict=False)


def resume_training(
    request: ResumeRequest,
    checkpoint_dir: Path,
    *,
    provenance: Provenance,
    net: torch.nn.Module,
    model_keys: Iterable[str],
    optimizer: torch.optim.Optimizer,
    scheduler: Any,
    scaler: torch.amp.GradScaler | None,
    device: torch.device,
    restore: Callable[[Mapping[str, Any]], None] | None = None,
) -> int:
    """Restore the newest (or named) checkpoint into the run; returns the step to start from (0 = fresh).

    ``restore(state)``, if given, is called with the loaded checkpoint for what else the run keeps
    in it (the trainer's skip counters)."""
    path = ckpt.resolve_resume(request.spec, checkpoint_dir)
    if path is None:
        return 0
    state = ckpt.load_checkpoint(path, map_location=device)
    diffs = provenance.differences(state)
    if diffs:
        listing = "\n  ".join(diffs)
        if not request.force:
            raise ResumeMismatchError(
                f"cannot resume from {path}: this run differs from the one that wrote it:\n  {listing}\n"
                "Restore the config and files it was made with, start a new run (another "
                "experiment.name, or --resume none to overwrite), or resume anyway with --resume force"
            )
        log.warning("--resume force: resuming from %s despite differences:\n  %s", path, listing)
    if not isinstance(state.get("model"), Mapping):
        raise CheckpointMismatchError(f"{path}: no 'model' state inside; is it a pixvox training checkpoint?")
    load_model_state(net, state["model"], model_keys, path)
    try:
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
    except (ValueError, KeyError) as err:  # torch's messages for parameter groups that differ
        raise CheckpointMismatchError(
            f"{path}: the optimizer state does not fit this run ({err}); was optim.name or the set "
            "of trainable parameters changed? Start over with --resume none"
        ) from err
    if scaler is not None and "scaler" in state:
        scaler.load_state_dict(state["scaler"])
    ckpt.set_rng_state(state["rng"])
    if restore is not None:
        restore(state)
    step = int(state["step"])
    log.info("resumed from %s at step %d", path, step)
    return step
