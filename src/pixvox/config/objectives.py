"""The pretraining objectives: ONE table, name → typed options and implementation.

A term of ``loss.terms`` is ``{name: <objective>, weight: w, <option>: value, ...}``. Its name picks
the row of :data:`OBJECTIVES`; the row's term dataclass is the term's schema (its fields are the
objective's options, with their defaults), and its implementation (``"module:Class"``, imported only
when a job builds its objectives, so that loading a config needs no torch) is a subclass of
:class:`pixvox.objectives.Objective`.

Adding an objective: write a term dataclass here (subclass :class:`ObjectiveTerm`), its
implementation module under ``pixvox/objectives/``, and one row in :data:`OBJECTIVES`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from pixvox.config.common import ValidationError, check


@dataclass
class ObjectiveTerm:
    """The keys every term has; each objective's term adds its options.

    Checks name their key relative to the term (a leading ``.``); the loader prefixes the term's own
    key (``loss.terms[0]``).
    """

    name: str = ""
    weight: float = 1.0  #: the term's factor in the total loss

    def __post_init__(self) -> None:
        check(self.weight > 0, ".weight", "must be > 0 (drop the term to switch it off)")

    @classmethod
    def __config_variant__(cls, value: Mapping[str, Any]) -> type[ObjectiveTerm]:
        """The schema of one term, chosen by its ``name`` (the loader calls this)."""
        name = value.get("name")
        if name not in OBJECTIVES:
            raise ValidationError(
                ".name", f"must be one of {', '.join(repr(n) for n in OBJECTIVES)}, got {name!r}"
            )
        return OBJECTIVES[name].term


@dataclass
class PPKTTerm(ObjectiveTerm):
    """PPKT: InfoNCE between student voxels and frozen-teacher pixels (Liu et al. 2021)."""

    name: str = "ppkt"
    temperature: float = 0.04  #: τ
    num_pairs: int = 4096  #: matched pairs N sampled across the global batch per step
    pixel_level: bool = False  #: pairs of single pixels instead of voxel-averaged pixel targets
    symmetric: bool = False  #: add the pixel→voxel direction

    def __post_init__(self) -> None:
        super().__post_init__()
        check(self.temperature > 0, ".temperature", "must be > 0")
        check(self.num_pairs >= 2, ".num_pairs", "must be >= 2")


@dataclass
class PointContrastTerm(ObjectiveTerm):
    """PointContrast: PointInfoNCE between two views of the same world voxels (Xie et al. 2020)."""

    name: str = "pointcontrast"
    temperature: float = 0.4  #: τ
    num_pairs: int = 4096  #: matched voxel pairs sampled across the global batch per step
    #: overlap: view 2 is ANOTHER fusion of the same scene whose voxel overlap with view 1 is at least
    #: ``min_overlap`` (as published; the pairs are stored by pixvox.prep.fusion); augment: view 2 is
    #: a second 3D augmentation of the same fusion (100% overlap, no change of viewpoint; a baseline)
    views: Literal["overlap", "augment"] = "overlap"
    min_overlap: float = 0.3  #: shared voxels / voxels of the smaller fusion, for ``views: overlap``

    def __post_init__(self) -> None:
        super().__post_init__()
        check(self.temperature > 0, ".temperature", "must be > 0")
        check(self.num_pairs >= 2, ".num_pairs", "must be >= 2")
        check(0 < self.min_overlap <= 1, ".min_overlap", "must be in (0, 1]")


@dataclass
class Masked2DTerm(ObjectiveTerm):
    """Masked 2D-feature modeling on sparse voxels (after I2P-MAE, arXiv 2212.06785; ACT, 2212.08320).

    The student's voxels are split into cubic patches of ``block_size`` metres; ``mask_ratio`` of the
    patches that hold a teacher target have their input replaced by a learned mask token; a light
    decoder predicts each patch's voxel-averaged frozen-teacher feature. See pixvox.objectives.masked_2d.
    """

    name: str = "masked_2d"
    #: patch edge in metres; a whole number of voxels (0.1 m = 4 voxels at 2.5 cm, the student's
    #: stride-4 cell, so that no stride-4 feature mixes masked and visible voxels; 2 voxels at 5 cm)
    block_size: float = 0.1
    mask_ratio: float = 0.6  #: fraction of a sample's patches with a target that are masked
    #: guided: keep visible the most salient patches (teacher feature farthest from the sample's mean
    #: patch feature); random: a uniformly random subset (the baseline)
    masking: Literal["guided", "random"] = "guided"
    visible_weight: float = 1.0  #: weight of the visible patches' prediction loss (masked ones: 1)
    #: cosine: 1 - cos(prediction, target); smooth_l1: on per-patch layer-normalized targets
    loss: Literal["cosine", "smooth_l1"] = "cosine"
    decoder_hidden: int = 256  #: width of the decoder's hidden layer
    #: which frozen backbone stage is the target (index into its stages, C2..C5 for the CNNs; -1 = last)
    target_stage: int = -1

    def __post_init__(self) -> None:
        super().__post_init__()
        check(self.block_size > 0, ".block_size", "must be > 0 (metres)")
        check(0 < self.mask_ratio < 1, ".mask_ratio", "must be in (0, 1)")
        check(self.visible_weight >= 0, ".visible_weight", "must be >= 0")
        check(self.decoder_hidden >= 1, ".decoder_hidden", "must be >= 1")


@dataclass(frozen=True)
class ObjectiveSpec:
    term: type[ObjectiveTerm]  #: the term's schema: its options and their defaults
    implementation: str  #: ``"module:Class"``, a subclass of pixvox.objectives.Objective
    summary: str  #: one line for the docs and ``pixvox config``


#: The registry: every objective ``loss.terms`` may name.
OBJECTIVES: dict[str, ObjectiveSpec] = {
    "ppkt": ObjectiveSpec(
        PPKTTerm,
        "pixvox.objectives.ppkt:PPKTObjective",
        "student voxels vs. frozen 2D-teacher pixels, InfoNCE (needs frames and a teacher)",
    ),
    "pointcontrast": ObjectiveSpec(
        PointContrastTerm,
        "pixvox.objectives.pointcontrast:PointContrastObjective",
        "student voxels vs. the same world voxels in another overlapping fusion, PointInfoNCE (3D only)",
    ),
    "masked_2d": ObjectiveSpec(
        Masked2DTerm,
        "pixvox.objectives.masked_2d:Masked2DObjective",
        "masked voxel patches predict their frozen-teacher features, 2D-guided masking (frames, teacher)",
    ),
}


def make_term(name: str, **options: Any) -> ObjectiveTerm:
    """The term of objective ``name`` with ``options`` (others at their defaults)."""
    if name not in OBJECTIVES:
        raise ValidationError(
            "loss.name", f"names unknown objective {name!r}; valid: {', '.join(OBJECTIVES)}"
        )
    return OBJECTIVES[name].term(**options)
