"""Pretraining objectives behind one seam (see :mod:`pixvox.objectives.base`).

The table of objectives is :data:`pixvox.config.objectives.OBJECTIVES`; ``loss.terms`` picks and
weights them, and :func:`build_objectives` turns a config into the objective modules.
"""

from pixvox.objectives.base import (
    Objective,
    ObjectiveResult,
    build_objectives,
    dataset_inputs,
    dataset_options,
    needs_teacher,
    objective_class,
)

__all__ = [
    "Objective",
    "ObjectiveResult",
    "build_objectives",
    "dataset_inputs",
    "dataset_options",
    "needs_teacher",
    "objective_class",
]
