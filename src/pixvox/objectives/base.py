"""The objective seam: what every pretraining objective declares and implements.

An objective is one module (a subclass of :class:`Objective`) with:

- ``term_type``: its term dataclass in :mod:`pixvox.config.objectives` (its typed options);
- ``inputs``: what the dataset must build for it beyond the student's voxels (:data:`INPUTS`), or
  :meth:`Objective.required_inputs` where that depends on the term's options (with
  :meth:`Objective.dataset_options` for the dataset's keyword arguments);
- ``needs_teacher``: whether the network must run the 2D teacher; ``uses_teacher_head``: whether it
  reads the teacher's trained pixel embeddings (``pixel_feats``; otherwise, with no term reading them,
  the FPN, projection and head are frozen and skipped); ``uses_student``: whether it reads the
  student's features of the clean input (``voxel_feats``);
- :meth:`Objective.build_module`: its trainable parts that live in the network (a mask token, a
  decoder: trained, checkpointed and DDP-wrapped with it), run by the network's forward;
- :meth:`Objective.prepare`: what it adds to the batch before the network runs (stage ``prepare``);
- :meth:`Objective.select_pairs`: what to score this step (the step times it as stage ``pairs``);
- :meth:`Objective.score`: its loss and the metrics it logs (stage ``loss``).

It is registered by one row in :data:`pixvox.config.objectives.OBJECTIVES` (name → term dataclass,
``"module:Class"``). :class:`pixvox.pretrain.step.PretrainStep` runs the network once, then every
term's objective, and sums ``weight × loss``.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import Any, ClassVar

import torch
from torch import nn

from pixvox.config.objectives import OBJECTIVES, ObjectiveTerm
from pixvox.config.pretrain import PretrainConfig

#: Dataset inputs an objective may ask for (pixvox.datasets.fusion.FusionPretrainDataset builds them):
#: ``frames``: the RGB-D frames, intrinsics and camera-to-world poses of each fusion;
#: ``view2``: a second, independent 3D augmentation of the same stored voxels;
#: ``partner``: another fusion of the same scene that overlaps (a stored view pair), augmented apart.
INPUTS = frozenset({"frames", "view2", "partner"})


@dataclass
class ObjectiveResult:
    """One objective's outcome for one step."""

    loss: torch.Tensor  #: scalar to back-propagate on this process (unweighted; DDP-scaled)
    #: global values to log, at least ``loss`` (mean over all pairs of all processes), ``acc``
    #: (top-1 retrieval), ``chance`` (1 / pairs) and ``pairs``
    metrics: dict[str, float] = field(default_factory=dict)
    items: int = 0  #: units of work on this process (pairs) for the throughput figure


class Objective(nn.Module):
    """Base of every pretraining objective (see the module docstring)."""

    term_type: ClassVar[type[ObjectiveTerm]] = ObjectiveTerm
    inputs: ClassVar[frozenset[str]] = frozenset()
    needs_teacher: ClassVar[bool] = False
    uses_teacher_head: ClassVar[bool] = True
    uses_student: ClassVar[bool] = True

    def __init__(self, term: ObjectiveTerm, cfg: PretrainConfig) -> None:
        super().__init__()
        if not isinstance(term, self.term_type):
            raise TypeError(
                f"{type(self).__name__} takes a {self.term_type.__name__}, got {type(term).__name__}"
            )
        self.term, self.cfg = term, cfg

    @classmethod
    def required_inputs(cls, term: ObjectiveTerm) -> frozenset[str]:
        """Dataset inputs this term needs (default: the class's ``inputs``)."""
        return cls.inputs

    @classmethod
    def dataset_options(cls, term: ObjectiveTerm) -> dict[str, Any]:
        """Keyword arguments of pixvox.datasets.fusion.FusionPretrainDataset this term sets."""
        return {}

    @classmethod
    def build_module(
        cls, term: ObjectiveTerm, cfg: PretrainConfig, teacher: nn.Module | None
    ) -> nn.Module | None:
        """The term's trainable module inside the pretraining network (None: it has none).

        The network calls it as ``module(net, batch)`` in its forward and merges the returned dict
        into its outputs.
        """
        return None

    def prepare(self, batch: dict[str, Any], net: nn.Module, seeds: list[int]) -> None:
        """Add what the network's forward needs to ``batch`` (default: nothing). ``net`` is the bare
        network (not DDP-wrapped); only frozen parts may run here (no gradient flows from them)."""

    def select_pairs(self, batch: dict[str, Any], out: dict[str, torch.Tensor], seeds: list[int]) -> Any:
        """What to score: pairs drawn with one generator per sample from ``seeds`` (one per sample of
        the *global* batch, so any number of processes draws the same pairs)."""
        raise NotImplementedError

    def score(self, out: dict[str, torch.Tensor], pairs: Any, gather: bool = True) -> ObjectiveResult:
        """The loss of the selected pairs; ``gather`` contrasts against every process's pairs."""
        raise NotImplementedError


def objective_class(name: str) -> type[Objective]:
    """The implementation registered for objective ``name``."""
    spec = OBJECTIVES[name]
    module, _, attr = spec.implementation.partition(":")
    cls = getattr(importlib.import_module(module), attr)
    if not (isinstance(cls, type) and issubclass(cls, Objective) and cls.term_type is spec.term):
        raise TypeError(f"{spec.implementation} is not an Objective for {spec.term.__name__}")
    return cls


def build_objectives(cfg: PretrainConfig) -> list[Objective]:
    """One objective module per ``loss.terms`` entry, in order (the first one's acc is the headline)."""
    return [objective_class(t.name)(t, cfg) for t in cfg.loss.terms]


def dataset_inputs(cfg: PretrainConfig) -> frozenset[str]:
    """The dataset inputs the configured objectives need."""
    inputs = frozenset().union(*(objective_class(t.name).required_inputs(t) for t in cfg.loss.terms))
    unknown = inputs - INPUTS
    if unknown:
        raise TypeError(
            f"objectives ask for unknown dataset inputs {sorted(unknown)}; known: {sorted(INPUTS)}"
        )
    return inputs


def dataset_options(cfg: PretrainConfig) -> dict[str, Any]:
    """The dataset's keyword arguments the configured objectives set (pixvox.datasets.fusion)."""
    out: dict[str, Any] = {}
    for t in cfg.loss.terms:
        out.update(objective_class(t.name).dataset_options(t))
    return out


def needs_teacher(cfg: PretrainConfig) -> bool:
    return any(objective_class(t.name).needs_teacher for t in cfg.loss.terms)
